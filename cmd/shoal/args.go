package main

import (
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// positionalArgs returns a command's positional arguments, applying any
// flags that follow them. urfave/cli v2 stops parsing flags at the first
// positional argument, so "shoal topic create orders --partitions 3" would
// otherwise see "--partitions" and "3" as topic names. A "--" ends flag
// parsing; everything after it is positional.
//
// Every action that takes positional arguments calls this before reading
// any flag.
func positionalArgs(c *cli.Context) ([]string, error) {
	raw := c.Args().Slice()
	var pos []string
	for i := 0; i < len(raw); i++ {
		a := raw[i]
		if a == "--" {
			pos = append(pos, raw[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' || isNegativeNumber(a) {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		value, hasValue := "", false
		if k, v, ok := strings.Cut(name, "="); ok {
			name, value, hasValue = k, v, true
		}
		f := lookupFlag(c.Command.Flags, name)
		if f == nil {
			return nil, usageError("%s: flag provided but not defined: %s (see 'shoal %s --help')", cmdName(c), a, cmdName(c))
		}
		if name == "help" || name == "h" {
			_ = cli.ShowCommandHelp(c.Lineage()[1], c.Command.Name)
			os.Exit(0)
		}
		if isBoolFlag(f) {
			if !hasValue {
				value = "true"
			}
		} else if !hasValue {
			if i+1 >= len(raw) {
				return nil, usageError("%s: flag needs an argument: %s", cmdName(c), a)
			}
			i++
			value = raw[i]
		}
		// Aliases have their own storage in the flag set; the canonical
		// name is the one the actions read.
		if err := c.Set(f.Names()[0], value); err != nil {
			return nil, usageError("%s: invalid value %q for flag %s: %v", cmdName(c), value, a, err)
		}
	}
	return pos, nil
}

// isNegativeNumber tells a positional like "-5" from a flag.
func isNegativeNumber(s string) bool {
	if len(s) < 2 || s[0] != '-' {
		return false
	}
	for _, r := range s[1:] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func lookupFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func isBoolFlag(f cli.Flag) bool {
	_, ok := f.(*cli.BoolFlag)
	return ok
}

// Global flags that may also follow a subcommand ("shoal topic list
// --output json"). Each leaf command carries hidden copies; globalString
// prefers a copy given on the command line, then the app's own flag
// (which also reads its environment variable and default).
var globalFlagNames = []string{"bootstrap-server", "output", "command-config"}

// leaf finishes a leaf command: hidden copies of the global flags and
// one-line usage errors.
func leaf(cmd *cli.Command) *cli.Command {
	for _, name := range globalFlagNames {
		cmd.Flags = append(cmd.Flags, &cli.StringFlag{Name: name, Hidden: true})
	}
	cmd.OnUsageError = onUsageError
	return cmd
}

// commandGroup is a command that only holds subcommands; run bare or with
// an unknown subcommand it answers as unknownSubcommand does.
func commandGroup(name, usage, usageText string, subcommands ...*cli.Command) *cli.Command {
	return &cli.Command{
		Name:         name,
		Usage:        usage,
		UsageText:    usageText,
		Action:       unknownSubcommand,
		OnUsageError: onUsageError,
		Subcommands:  subcommands,
	}
}

// unknownSubcommand is the action of a command group: with no argument it
// shows the group's help, otherwise it names the unknown subcommand.
func unknownSubcommand(c *cli.Context) error {
	if c.Args().Len() == 0 {
		return cli.ShowSubcommandHelp(c)
	}
	return usageError("%s: unknown command %q (see 'shoal %s --help')", cmdName(c), c.Args().First(), cmdName(c))
}

// globalString reads a global flag, wherever on the command line it was
// given.
func globalString(c *cli.Context, name string) string {
	lineage := c.Lineage()
	for _, cc := range lineage {
		for _, n := range cc.LocalFlagNames() {
			if n == name {
				return cc.String(name)
			}
		}
	}
	// Not given anywhere: the outermost definition is the app's own flag.
	for i := len(lineage) - 1; i >= 0; i-- {
		if cc := lineage[i]; cc.Command != nil && lookupFlag(cc.Command.Flags, name) != nil {
			return cc.String(name)
		}
	}
	return ""
}

// noArgs is positionalArgs for a command that takes no positional
// argument: it refuses the first one given.
func noArgs(c *cli.Context) error {
	args, err := positionalArgs(c)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return usageError("%s: unexpected argument %q", cmdName(c), args[0])
	}
	return nil
}

// oneArg is positionalArgs for a command that takes exactly one positional
// argument; what names it in the usage error ("topic name").
func oneArg(c *cli.Context, what string) (string, error) {
	args, err := positionalArgs(c)
	if err != nil {
		return "", err
	}
	if len(args) != 1 {
		return "", usageError("%s: expected one %s (usage: %s)", cmdName(c), what, firstLine(c.Command.UsageText))
	}
	return args[0], nil
}

// someArgs is positionalArgs for a command that takes one or more
// positional arguments; what names one in the usage error ("topic name").
func someArgs(c *cli.Context, what string) ([]string, error) {
	args, err := positionalArgs(c)
	if err != nil {
		return nil, err
	}
	if len(args) == 0 {
		return nil, missingArg(c, what)
	}
	return args, nil
}

// missingArg is the usage error of a command given none of the arguments
// it needs, quoting its usage line.
func missingArg(c *cli.Context, what string) error {
	return usageError("%s: missing %s (usage: %s)", cmdName(c), what, firstLine(c.Command.UsageText))
}

// cmdName is the command's path without the program name, for messages:
// "topic create".
func cmdName(c *cli.Context) string {
	name := c.Command.HelpName
	if name == "" {
		name = c.Command.Name
	}
	if app := c.App.Name; app != "" {
		name = strings.TrimPrefix(name, app+" ")
	}
	return name
}

// listValue collects every occurrence of a repeatable flag as given.
// cli.StringSliceFlag would split values at commas, which breaks config
// values such as cleanup.policy=compact,delete.
type listValue struct{ vals []string }

func (l *listValue) Set(s string) error { l.vals = append(l.vals, s); return nil }
func (l *listValue) String() string     { return strings.Join(l.vals, " ") }

// listFlag is a repeatable flag that keeps commas in its values.
func listFlag(name string, aliases []string, usage string) cli.Flag {
	return &cli.GenericFlag{Name: name, Aliases: aliases, Usage: usage, Value: &listValue{}}
}

// listFlagValues returns a listFlag's values.
func listFlagValues(c *cli.Context, name string) []string {
	if l, ok := c.Generic(name).(*listValue); ok {
		return l.vals
	}
	return nil
}
