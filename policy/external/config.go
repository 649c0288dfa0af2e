package external

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/fieldpath"
	"github.com/gatehouse/gatehouse/httpascii"
	"github.com/gatehouse/gatehouse/policy"
)

const (
	defaultTimeout = 100 * time.Millisecond
	maxTimeout     = 10 * time.Second
	// maxBodyBytes keeps a request with its body under gRPC's default
	// 4 MiB message limit of the plugin's server.
	maxBodyBytes = 1 << 20
)

// pluginName is a plain file name: the configuration may not reach out of
// the plugin directory.
var pluginName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$`)

// settings is an external policy's configuration, read.
type settings struct {
	plugin string
	// path is the binary's path on the gateway; "" during validation.
	path string
	// binary identifies the binary's version (size and modification
	// time), so that replacing the file restarts the plugin on the next
	// deployment.
	binary string
	config []byte
	// timeout bounds one call, process start included.
	timeout  time.Duration
	failOpen bool
	// maxBody is how much body the plugin receives; 0 sends none.
	maxBody int
	// headers are the names of the headers sent; nil sends all.
	headers []string
}

func parse(config map[string]any, env *policy.Env) (*settings, error) {
	var errs policy.ConfigErrors
	r := policy.NewReader(config, &errs)
	s := &settings{}
	if r.Required("plugin") {
		s.plugin = r.String("plugin", "")
		if _, isStr := config["plugin"].(string); isStr && !pluginName.MatchString(s.plugin) {
			r.Fail("plugin", `must be the file name of a binary in the plugin directory (letters, digits, ".", "_" and "-"; no path)`)
			s.plugin = ""
		}
	}
	cfg, err := json.Marshal(r.Any("config"))
	if err != nil {
		r.Failf("config", "must be a value JSON can carry: %v", err)
	}
	s.config = cfg
	s.timeout = r.Duration("timeout", defaultTimeout, time.Millisecond, maxTimeout)
	s.failOpen = r.OneOf("failure_mode", "closed", "closed", "open") == "open"
	r.Object("body", func(b *policy.Reader) {
		if b.Required("max_bytes") {
			s.maxBody = b.Int("max_bytes", 0, 1, maxBodyBytes)
		}
	})
	// An empty list sends no header; no list sends them all.
	listed := r.Has("headers")
	s.headers = r.Strings("headers")
	if listed && s.headers == nil {
		s.headers = []string{}
	}
	for i, h := range s.headers {
		if !httpascii.IsToken(h) {
			r.Fail(fieldpath.Index("headers", i), "must be a header name")
		}
	}
	r.Done()
	if env.Resources != nil && s.plugin != "" {
		s.locate(r, env.PluginDir)
	}
	return s, errs.Err()
}

// locate finds the binary on the gateway. The admin node validates
// configurations without a plugin directory: only the gateway can tell
// whether the binary is there.
func (s *settings) locate(r *policy.Reader, dir string) {
	if dir == "" {
		r.Fail("plugin", "this gateway has no plugin directory")
		return
	}
	s.path = filepath.Join(dir, s.plugin)
	fi, err := os.Stat(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.Failf("plugin", "no file %s in the plugin directory %s", s.plugin, dir)
	case err != nil:
		r.Failf("plugin", "%v", err)
	case !fi.Mode().IsRegular():
		r.Failf("plugin", "%s is not a regular file", s.path)
	case fi.Mode().Perm()&0o111 == 0:
		r.Failf("plugin", "%s is not executable", s.path)
	default:
		s.binary = strconv.FormatInt(fi.Size(), 10) + "/" + strconv.FormatInt(fi.ModTime().UnixNano(), 10)
	}
}

// wants reports whether the header called name is sent to the plugin.
func (s *settings) wants(name []byte) bool {
	if s.headers == nil {
		return true
	}
	for _, h := range s.headers {
		if httpascii.EqualFold(name, h) {
			return true
		}
	}
	return false
}
