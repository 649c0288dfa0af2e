package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/deploy"
	"github.com/gatehouse/gatehouse/policy/catalog"
)

func validateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check configuration files without serving them",
		Long: `Decode and validate each configuration file (YAML or JSON) as a gateway
would, printing its checksum when it is valid and every error with its field
path when it is not. Exits 1 if any file is invalid.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			out := cmd.OutOrStdout()
			bad := 0
			for _, f := range files {
				cfg, err := deploy.DecodeFile(f)
				if err == nil {
					err = cfg.Validate(catalog.Checker{})
				}
				var sum string
				if err == nil {
					sum, err = cfg.Checksum()
				}
				if err != nil {
					bad++
					fmt.Fprintf(out, "%s: invalid\n%v\n", f, err)
					continue
				}
				fmt.Fprintf(out, "%s: valid %s\n", f, sum)
			}
			if bad > 0 {
				return fmt.Errorf("%d of %d files invalid", bad, len(files))
			}
			return nil
		},
	}
}
