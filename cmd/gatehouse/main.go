// Command gatehouse is the single binary of a Gatehouse domain: the admin
// node, the node manager, the gateway and the command-line client are its
// subcommands. This package only parses flags and wires packages together.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/cli"
	"github.com/gatehouse/gatehouse/deploy"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	root := &cobra.Command{
		Use:           "gatehouse",
		Short:         "Gatehouse runs a fleet of API gateways as one domain",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Node managers read the feature level from this line
	// (nodemanager/capabilities.go): keep its form.
	root.SetVersionTemplate(fmt.Sprintf("gatehouse version %s (configuration feature level %d)\n", version, deploy.FeatureLevel))
	root.AddCommand(devCommand(), adminCommand(), nodeCommand(), gatewayCommand(), validateCommand(), demoUpstreamCommand())
	root.AddCommand(cli.Commands()...)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse:", err)
		os.Exit(1)
	}
}
