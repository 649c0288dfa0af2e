package api

import (
	"context"
	"fmt"

	"github.com/gatehouse/gatehouse/adminnode/store"
)

// A group's gossip keys are sealed with the settings key before they reach
// the store, as environment secrets are: a reader of the database (a
// PostgreSQL replica, a dump, a copy of admin.db) learns nothing that lets
// them join or read a group's gossip.

// gossipPlace is the "environment" part of the place a gossip key is
// sealed for; an environment's name cannot hold a NUL, so no secret ever
// shares a place with a gossip key.
const gossipPlace = "\x00gossip-key"

// sealGossipKeys seals the keys of group for the store.
func (s *Server) sealGossipKeys(group string, keys [][]byte) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = s.secretKey.Seal(gossipPlace, group, k)
	}
	return out
}

// openGossipKeys opens the stored keys of group. A key of exactly a gossip
// key's size was stored in clear by a gatehouse that did not seal them
// (a sealed one is longer): it is returned as it is, and legacy reports
// that the group's keys should be stored again, sealed.
func (s *Server) openGossipKeys(group string, stored [][]byte) (keys [][]byte, legacy bool, err error) {
	keys = make([][]byte, len(stored))
	for i, k := range stored {
		if len(k) == gossipKeySize {
			keys[i], legacy = k, true
			continue
		}
		if keys[i], err = s.secretKey.Open(gossipPlace, group, k); err != nil {
			return nil, false, fmt.Errorf("gossip key %d of group %s: %w", i, group, err)
		}
	}
	return keys, legacy, nil
}

// setGossipKeys stores the clear keys of group, sealed.
func (s *Server) setGossipKeys(ctx context.Context, group string, keys [][]byte) (store.Group, error) {
	return s.store.SetGossipKeys(ctx, group, s.sealGossipKeys(group, keys))
}
