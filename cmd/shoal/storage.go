package main

// shoal storage format: prepares a node's data directory before its first
// start, as kafka-storage.sh format does; --add-scram creates the first
// SCRAM users, so a cluster whose listeners all require SASL has an
// administrator who can log in.

import (
	"errors"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/sasl"
)

func storageCommand() *cli.Command {
	return commandGroup("storage", "prepare a node's data directory",
		`shoal storage format --config server.properties --add-scram 'SCRAM-SHA-512=[name=admin,password=admin-secret]'`,
		leaf(&cli.Command{
			Name:  "format",
			Usage: "store bootstrap SCRAM credentials for the node's first start (refused once its metadata log exists)",
			UsageText: `shoal storage format [--config server.properties] [--set key=value ...] --add-scram 'MECHANISM=[name=NAME,password=PASSWORD]' ...

example: shoal storage format --config server.properties --add-scram 'SCRAM-SHA-512=[name=admin,password=admin-secret]'
A cluster's voters must get identical credentials: give salt=... (base64) so every node stores the same.`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "config", Usage: "the server.properties the node will be started with"},
				&cli.StringSliceFlag{Name: "set", Usage: "override one key: --set key=value (repeatable), as for serve"},
				&cli.StringSliceFlag{Name: "add-scram", Usage: "a credential: 'SCRAM-SHA-512=[name=alice,password=alice-secret]' (also iterations=, salt=, saltedpassword=; repeatable)"},
			},
			Action: storageFormat,
		}),
	)
}

func storageFormat(c *cli.Context) error {
	cfg, err := config.Load(c.String("config"), os.Environ(), c.StringSlice("set"))
	if err != nil {
		return usageError("%v", err)
	}
	var specs []sasl.ScramSpec
	for _, s := range c.StringSlice("add-scram") {
		sp, err := sasl.ParseScramSpecs(s)
		if err != nil {
			return usageError("--add-scram: %v", err)
		}
		specs = append(specs, sp...)
	}
	if len(specs) == 0 {
		return usageError("storage format: give at least one --add-scram")
	}
	out, err := outputMode(c)
	if err != nil {
		return err
	}
	users, err := broker.FormatStorage(cfg, specs)
	if errors.Is(err, broker.ErrFormatted) {
		return failure("storage format: %v; add users with 'shoal user scram set'", err)
	}
	if err != nil {
		return failure("storage format: %v", err)
	}
	if out == outputJSON {
		return writeJSON(c.App.Writer, struct {
			MetadataDir string   `json:"metadata_dir"`
			Credentials []string `json:"credentials"`
		}{cfg.MetadataDir, users})
	}
	return writeTable(c.App.Writer, []string{"METADATA-DIR", "CREDENTIAL"}, users, func(u string) []any {
		return []any{cfg.MetadataDir, u}
	})
}
