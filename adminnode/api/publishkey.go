package api

import (
	"context"
	"fmt"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/pubseal"
)

// The domain's publish keys seal the deployments published to object
// storage (package pubseal, docs/object-storage.md). They are kept in the
// store sealed with the settings key, as gossip keys are, made the first
// time one is needed, sent to node managers with their instances and
// exported to domain admins for standalone gateways.

// publishPlace is the "environment" part of the place a publish key is
// sealed for (see gossipPlace).
const publishPlace = "\x00publish-key"

func (s *Server) sealPublishKey(raw []byte) []byte {
	return s.secretKey.Seal(publishPlace, s.domain.Name, raw)
}

func (s *Server) openPublishKeys(stored [][]byte) ([]*pubseal.Key, error) {
	keys := make([]*pubseal.Key, len(stored))
	for i, sealed := range stored {
		raw, err := s.secretKey.Open(publishPlace, s.domain.Name, sealed)
		if err != nil {
			return nil, fmt.Errorf("publish key %d: %w", i+1, err)
		}
		if keys[i], err = pubseal.ParseKey(raw); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// storedPublishKeys returns the domain's publish keys as stored, none
// when it has none yet or they do not open. It never writes: a blocking
// answer that wrote would wake every other blocking query.
func (s *Server) storedPublishKeys(ctx context.Context) ([]*pubseal.Key, error) {
	d, err := s.store.GetDomain(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the domain's publish keys: %w", err)
	}
	keys, err := s.openPublishKeys(d.PublishKeys)
	if err != nil {
		s.log.Error("publish keys do not open with the settings key (settings.key replaced?): none sent to node managers until an admin node starts and makes a new one", "error", err)
		return nil, nil
	}
	return keys, nil
}

// PublishKeys returns the domain's publish keys, the one sealing first,
// making the first when the domain has none. The admin node calls it at
// start, so that node managers get the keys from their first answer. Keys that no longer open
// (the settings key was replaced) are replaced by a new one: node
// managers take it from their next answer; a standalone gateway needs the
// key file exported again.
func (s *Server) PublishKeys(ctx context.Context) ([]*pubseal.Key, error) {
	d, err := s.store.GetDomain(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the domain's publish keys: %w", err)
	}
	if len(d.PublishKeys) > 0 {
		keys, err := s.openPublishKeys(d.PublishKeys)
		if err == nil {
			return keys, nil
		}
		s.log.Error("publish keys do not open with the settings key (settings.key replaced?): making a new one; export it again for gateways started with --config-key", "error", err)
	}
	stored, err := s.store.UpdatePublishKeys(ctx, func(cur [][]byte) ([][]byte, error) {
		// Another admin node may have made it meanwhile.
		if _, err := s.openPublishKeys(cur); err == nil && len(cur) > 0 {
			return cur, nil
		}
		return [][]byte{s.sealPublishKey(pubseal.NewKey())}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("store the domain's publish key: %w", err)
	}
	return s.openPublishKeys(stored)
}

// rotatePublishKey makes a new key that seals from now on and keeps the
// previous one, with which node managers and gateways still open what
// was sealed before; an older key is dropped. The publisher seals every
// group's object again with the new key at once.
func (s *Server) rotatePublishKey(q *request) (any, error) {
	q.auditTarget = "domain/publish-key"
	if _, err := s.PublishKeys(q.ctx); err != nil {
		return nil, err
	}
	stored, err := s.store.UpdatePublishKeys(q.ctx, func(cur [][]byte) ([][]byte, error) {
		return [][]byte{s.sealPublishKey(pubseal.NewKey()), cur[0]}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("store the domain's publish keys: %w", err)
	}
	keys, err := s.openPublishKeys(stored)
	if err != nil {
		return nil, err
	}
	out := apitypes.PublishKeyRotation{IDs: keyIDs(keys)}
	q.auditDetail = "new publish key " + out.IDs[0]
	return out, nil
}

// exportPublishKeys gives a domain admin the keys, for the key file of a
// standalone gateway (gateway --config-key).
func (s *Server) exportPublishKeys(q *request) (any, error) {
	q.auditTarget = "domain/publish-key"
	keys, err := s.PublishKeys(q.ctx)
	if err != nil {
		return nil, err
	}
	out := apitypes.PublishKeyExport{Domain: s.domain.Name, IDs: keyIDs(keys)}
	for _, k := range keys {
		out.Keys = append(out.Keys, k.Bytes())
	}
	q.auditDetail = fmt.Sprintf("publish keys %v exported", out.IDs)
	return out, nil
}

func keyIDs(keys []*pubseal.Key) []string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}
