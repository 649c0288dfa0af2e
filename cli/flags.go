package cli

import "github.com/spf13/pflag"

// NormalizeFlag reads the old spellings of renamed flags as their new
// names, so that scripts written for them keep working while help shows
// one name per thing: --addr for the admin node's address (node join said
// --admin) and --env for an environment (group update said
// --environment).
func NormalizeFlag(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	switch name {
	case "admin", "admin-addr":
		return "addr"
	case "environment":
		return "env"
	}
	return pflag.NormalizedName(name)
}
