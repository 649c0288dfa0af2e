package nodemanager

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/nodemanager/localapi"
	"github.com/gatehouse/gatehouse/nodemanager/supervisor"
)

// Dynamic settings (docs/node-manager.md#dynamic-settings): the admin
// node gives each desired instance the settings its gateway is to run;
// the node manager delivers them to the running gateway's control
// endpoint, authenticated with the instance's secret, when they change
// and to every new gateway process, and tries again every settingsEvery
// until the gateway takes them.

// settingsEvery is how often the running gateways are checked against
// their desired settings, besides at every change of them.
const settingsEvery = time.Second

// settingsTimeout bounds one delivery.
const settingsTimeout = 2 * time.Second

// delivered is what a gateway process was last given.
type delivered struct {
	pid      int
	settings localapi.Settings
}

// desiredSettings are the settings the admin node wants in's gateway to
// run.
func desiredSettings(in apitypes.AgentInstance) localapi.Settings {
	if in.Settings == nil {
		return localapi.Settings{}
	}
	return localapi.Settings(*in.Settings)
}

// deliverSettings keeps the running gateways on their desired settings
// until ctx ends.
func (a *agent) deliverSettings(ctx context.Context) {
	client := &http.Client{Timeout: settingsTimeout}
	given := map[string]delivered{}
	t := time.NewTicker(settingsEvery)
	defer t.Stop()
	for {
		a.deliverSettingsOnce(ctx, client, given)
		select {
		case <-ctx.Done():
			return
		case <-a.settingsKick:
		case <-t.C:
		}
	}
}

// deliverSettingsOnce gives each running gateway whose settings differ
// from its desired ones the desired ones. A process this node manager
// started runs as started until given some; an adopted one may run what
// an earlier node manager gave it, so it is always given them.
func (a *agent) deliverSettingsOnce(ctx context.Context, client *http.Client, given map[string]delivered) {
	_, ins, err := a.state.Instances()
	if err != nil {
		a.log.Error("read desired instances", "error", err)
		return
	}
	states := map[string]supervisor.State{}
	for _, st := range a.sup.States() {
		states[st.Name] = st
	}
	secrets, err := a.state.Secrets()
	if err != nil {
		a.log.Error("read instance secrets", "error", err)
		return
	}
	seen := map[string]bool{}
	for _, in := range ins {
		seen[in.Name] = true
		st := states[in.Name]
		if st.PID == 0 || st.Process != supervisor.StateRunning {
			continue
		}
		want := desiredSettings(in)
		last, ok := given[in.Name]
		if !ok || last.pid != st.PID {
			last = delivered{pid: st.PID}
			if st.Adopted {
				// Not known: anything but want makes it be given.
				last.pid = -1
			}
		}
		if last.pid == st.PID && last.settings == want {
			given[in.Name] = last
			continue
		}
		if err := a.putSettings(ctx, client, orDefault(in.StatusListen, ":8085"), secrets[in.Name], want); err != nil {
			// The gateway may not listen yet: the next round tries again.
			a.log.Debug("deliver dynamic settings", "instance", in.Name, "error", err)
			continue
		}
		given[in.Name] = delivered{pid: st.PID, settings: want}
		a.log.Info("dynamic settings delivered", "instance", in.Name, "pid", st.PID, "log_level", want.LogLevel,
			"access_log_percent", want.AccessLogPercent, "trace_route", want.TraceRoute)
	}
	for name := range given {
		if !seen[name] {
			delete(given, name)
		}
	}
}

// putSettings sends s to the control endpoint of the gateway whose status
// address is listen.
func (a *agent) putSettings(ctx context.Context, client *http.Client, listen, secret string, s localapi.Settings) error {
	url, err := statusURL(listen, localapi.GatewayPathSettings)
	if err != nil {
		return err
	}
	body, err := json.Marshal(s)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set(localapi.HeaderAuthorization, localapi.BearerPrefix+secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return fmt.Errorf("PUT %s: %s: %s", url, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// statusURL is the URL of path on a gateway's status address, reached
// on loopback when the address is unspecified.
func statusURL(listen, path string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("status address %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified() && ip.To4() != nil) {
		host = "127.0.0.1"
	} else if ip != nil && ip.IsUnspecified() {
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + path, nil
}

// kickSettings asks for a delivery round now.
func (a *agent) kickSettings() {
	select {
	case a.settingsKick <- struct{}{}:
	default:
	}
}
