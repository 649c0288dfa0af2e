package adminnode

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/gatehouse/gatehouse/adminnode/seal"
	"github.com/gatehouse/gatehouse/adminnode/store"
)

// loadSettingsKey reads the key the environments' secrets are sealed
// with. A data dir without one — a domain made before there were secrets
// — gets a new one, unless the store already holds secrets: then the
// key was lost or left out of a restore, a new key would open none of
// them, and starting would only hide that.
//
// Secrets the key does not open (the file was replaced) do not stop the
// node: they are logged, listed as unreadable by the API, and set again
// by an administrator.
func loadSettingsKey(ctx context.Context, dir string, s store.Store, logger hclog.Logger) (*seal.Key, error) {
	path := filepath.Join(dir, SettingsKeyFile)
	secrets, err := s.ListSecrets(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("load settings key: read the secrets: %w", err)
	}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && len(secrets) > 0:
		return nil, fmt.Errorf("%s is missing, but the store holds %d environment secrets sealed with it: restore it from the backup of this data dir "+
			"(if it is lost, so are the secrets' values: see \"Backup\" in docs/admin-node.md)", path, len(secrets))
	case errors.Is(err, fs.ErrNotExist):
		data = seal.NewKeyFile()
		if err := writeNew(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("create settings key: %w", err)
		}
		if err := syncDir(dir); err != nil {
			return nil, err
		}
		logger.Info("created the key environment secrets are sealed with", "path", path)
	case err != nil:
		return nil, fmt.Errorf("load settings key: %w", err)
	}
	key, err := seal.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("load settings key %s: %w", path, err)
	}
	var unreadable []string
	for _, sec := range secrets {
		if _, err := key.Open(sec.Environment, sec.Name, sec.Sealed); err != nil {
			unreadable = append(unreadable, sec.Environment+"/"+sec.Name)
		}
	}
	if unreadable != nil {
		logger.Error("environment secrets do not open with the settings key (settings.key replaced?): restore it, or set them again",
			"path", path, "secrets", strings.Join(unreadable, ","))
	}
	return key, nil
}
