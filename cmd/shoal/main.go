// Command shoal is the one shoal binary: the broker (serve) and the tools
// that talk to it.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "shoal:", err)
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:                 "shoal",
		Usage:                "a Kafka-compatible log and work queue",
		EnableBashCompletion: true,
		// --set listeners=A://h:p,B://h:p carries commas in its value.
		DisableSliceFlagSeparator: true,
		// Errors are printed once, by main, as one line.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError("%v (see 'shoal --help')", err)
		},
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:    "bootstrap-server",
				Usage:   "broker address(es), comma separated",
				Value:   "127.0.0.1:9092",
				EnvVars: []string{"SHOAL_BOOTSTRAP_SERVER"},
			},
			&cli.StringFlag{
				Name:    "command-config",
				Usage:   "Kafka client properties for TLS and SASL (security.protocol, sasl.mechanism, sasl.jaas.config, ssl.truststore.location, ...)",
				EnvVars: []string{"SHOAL_COMMAND_CONFIG"},
			},
			&cli.StringFlag{
				Name:  "output",
				Usage: "output format: table or json",
				Value: "table",
			},
		},
		// "shoal bogus" names the unknown command, as "shoal topic bogus"
		// does; with no command at all it shows the help.
		Action: func(c *cli.Context) error {
			if c.Args().Len() == 0 {
				return cli.ShowAppHelp(c)
			}
			return usageError("unknown command %q (see 'shoal --help')", c.Args().First())
		},
		Commands: []*cli.Command{
			serveCommand(),
			benchCommand(),
			clusterCommand(),
			topicCommand(),
			produceCommand(),
			consumeCommand(),
			groupCommand(),
			shareCommand(),
			txnCommand(),
			logCommand(),
			storageCommand(),
			aclCommand(),
			userCommand(),
			quotaCommand(),
			configCommand(),
		},
	}
}
