// Command gatehouse is the single binary of a Gatehouse domain: the admin
// node, the node manager, the gateway and the command-line client are its
// subcommands. This package only parses flags and wires packages together.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/cli"
	"github.com/gatehouse/gatehouse/deploy"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// featureLevel, set at build time with -ldflags "-X main.featureLevel=N",
// builds gateways that understand configurations only up to level N
// (1 ≤ N ≤ deploy.FeatureLevel) and say so: what a build of an older
// release would do, for tests of mixed fleets (docs/gateway.md#feature-levels).
// Empty, the build's own level.
var featureLevel = ""

// builtFeatureLevel is the configuration feature level of this binary.
func builtFeatureLevel() (int, error) {
	if featureLevel == "" {
		return deploy.FeatureLevel, nil
	}
	n, err := strconv.Atoi(featureLevel)
	if err != nil || n < 1 || n > deploy.FeatureLevel {
		return 0, fmt.Errorf("this binary was built with feature level %q: it must be between 1 and %d", featureLevel, deploy.FeatureLevel)
	}
	return n, nil
}

func main() {
	level, err := builtFeatureLevel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse:", err)
		os.Exit(1)
	}
	root := &cobra.Command{
		Use:           "gatehouse",
		Short:         "Gatehouse runs a fleet of API gateways as one domain",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Node managers read the feature level from this line
	// (nodemanager/capabilities.go): keep its form.
	root.SetVersionTemplate(fmt.Sprintf("gatehouse version %s (configuration feature level %d)\n", version, level))
	root.AddCommand(devCommand(), adminCommand(), nodeCommand(), gatewayCommand(level), validateCommand(), demoUpstreamCommand())
	root.AddCommand(cli.Commands()...)
	refuseUnknownSubcommands(root)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse:", err)
		os.Exit(1)
	}
}

// refuseUnknownSubcommands makes every command that only groups others
// (`gatehouse group`, `gatehouse config`, ...) refuse an argument that
// names none of them, with suggestions, as the root does for an unknown
// command: cobra would otherwise print the group's help and exit 0, so
// that `gatehouse group sumary` in a script would succeed doing nothing.
func refuseUnknownSubcommands(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if cmd.Runnable() || !cmd.HasSubCommands() || !cmd.HasParent() {
		return
	}
	cmd.SuggestionsMinimumDistance = 2 // cobra's own default, set only for the root
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
		return fmt.Errorf("%s\n\nRun '%s --help' for usage", msg, cmd.CommandPath())
	}
}
