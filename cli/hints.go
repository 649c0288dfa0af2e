package cli

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/adminnode/apitypes"
	"github.com/gatehouse/gatehouse/adminnode/client"
)

// withHints wraps the RunE of cmd and of its subcommands so that the
// errors a user can fix alone say how.
func withHints(cmd *cobra.Command) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(c *cobra.Command, args []string) error { return hint(run(c, args)) }
	}
	for _, sub := range cmd.Commands() {
		withHints(sub)
	}
}

// hint adds to err what to do about it, when that is known: a server
// certificate of an unknown CA, a database the admin node cannot reach, an
// expired or revoked token.
func hint(err error) error {
	if err == nil {
		return nil
	}
	var unknownCA x509.UnknownAuthorityError
	if errors.As(err, &unknownCA) {
		return fmt.Errorf("%w\nhint: the admin node's certificate is signed by a CA this command does not trust: "+
			"give the domain CA with --ca-cert FILE or $%s (the admin node's ca.crt), "+
			"or log in once with `gatehouse login --addr URL --ca-fingerprint SHA256:…`, which saves it", err, envCACert)
	}
	var apiErr *client.APIError
	if errors.As(err, &apiErr) && apiErr.Detail.Code == apitypes.CodeUnavailable {
		return fmt.Errorf("%w\nhint: the admin node cannot reach the domain's database; nothing was changed and gateways keep serving "+
			"their last deployment: run the command again once the database answers (docs/admin-node.md, \"Runbook\")", err)
	}
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized {
		switch msg := apiErr.Detail.Message; {
		case strings.Contains(msg, "expired"):
			return fmt.Errorf("%w\nhint: your login has expired: run `gatehouse login` again, or give a valid token with --token or $%s", err, envToken)
		case strings.Contains(msg, "revoked"), strings.Contains(msg, "invalid token"):
			return fmt.Errorf("%w\nhint: the token is no longer valid: run `gatehouse login` again, or give a valid token with --token or $%s", err, envToken)
		}
	}
	return err
}
