package main

// shoal user scram set|list|delete: SCRAM credentials, as Kafka's
// kafka-configs.sh --alter --add-config 'SCRAM-SHA-512=[password=...]'
// --entity-type users does. The password is salted on this side; the
// broker receives and stores only the salted form.

import (
	"context"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/urfave/cli/v2"

	"github.com/shoalmq/shoal/sasl"
)

func userCommand() *cli.Command {
	return commandGroup("user", "manage users' SCRAM credentials",
		`shoal user scram set --name alice --mechanism SCRAM-SHA-512 --password alice-secret
shoal user scram list
shoal user scram delete --name alice --mechanism SCRAM-SHA-512`,
		commandGroup("scram", "set, list and delete SCRAM-SHA-256 and SCRAM-SHA-512 credentials", "",
			scramSetCommand(), scramListCommand(), scramDeleteCommand()),
	)
}

func scramMechanismFlag() cli.Flag {
	return &cli.StringFlag{Name: "mechanism", Value: sasl.SCRAMSHA512, Usage: "SCRAM-SHA-256 or SCRAM-SHA-512"}
}

func scramSetCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "set",
		Usage: "create or replace a user's credential for one mechanism",
		UsageText: `shoal user scram set --name NAME --password PASSWORD [--mechanism SCRAM-SHA-512] [--iterations 4096]

example: shoal user scram set --name alice --mechanism SCRAM-SHA-256 --password alice-secret`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Usage: "user name", Required: true},
			&cli.StringFlag{Name: "password", Usage: "the password (salted here; only the salted form is sent)", Required: true},
			scramMechanismFlag(),
			&cli.StringFlag{Name: "iterations", Value: "4096", Usage: "SCRAM iterations, 4096 to 16384"},
		},
		Action: func(c *cli.Context) error {
			mech, err := scramMechanismArg(c)
			if err != nil {
				return err
			}
			iters, err := intFlagValue(c, "iterations", sasl.MinScramIterations, sasl.MaxScramIterations)
			if err != nil {
				return err
			}
			up := kadm.UpsertSCRAM{User: c.String("name"), Mechanism: mech, Iterations: int32(iters), Password: c.String("password")}
			return alterSCRAM(c, nil, []kadm.UpsertSCRAM{up}, "set")
		},
	})
}

func scramDeleteCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "delete",
		Usage: "delete a user's credential for one mechanism",
		UsageText: `shoal user scram delete --name NAME [--mechanism SCRAM-SHA-512]

example: shoal user scram delete --name alice --mechanism SCRAM-SHA-512`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Usage: "user name", Required: true},
			scramMechanismFlag(),
		},
		Action: func(c *cli.Context) error {
			mech, err := scramMechanismArg(c)
			if err != nil {
				return err
			}
			return alterSCRAM(c, []kadm.DeleteSCRAM{{User: c.String("name"), Mechanism: mech}}, nil, "deleted")
		},
	})
}

func scramMechanismArg(c *cli.Context) (kadm.ScramMechanism, error) {
	m, err := sasl.ParseScramMechanism(c.String("mechanism"))
	if err != nil {
		return 0, usageError("--mechanism: %v", err)
	}
	return kadm.ScramMechanism(m), nil
}

// alterSCRAM sends one AlterUserScramCredentials and reports its outcome.
func alterSCRAM(c *cli.Context, del []kadm.DeleteSCRAM, up []kadm.UpsertSCRAM, verb string) error {
	return withAdmin(c, func(ctx context.Context, a adminSession) error {
		res, err := a.adm.AlterUserSCRAMs(ctx, del, up)
		if err != nil {
			return failure("%s SCRAM credential: %s", verb, describeErr(err))
		}
		type result struct {
			User   string `json:"user"`
			Result string `json:"result"`
		}
		var list []result
		for _, r := range res.Sorted() {
			if r.Err != nil {
				return failure("user %q: %s", r.User, describeErrMsg(r.Err, r.ErrMessage))
			}
			list = append(list, result{r.User, verb})
		}
		return printRows(c.App.Writer, a.out, list, []string{"USER", "RESULT"}, func(r result) []any { return []any{r.User, r.Result} })
	})
}

func scramListCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "list",
		Usage: "list users with SCRAM credentials (mechanisms and iterations; never a secret)",
		UsageText: `shoal user scram list [NAME...]

example: shoal user scram list alice`,
		Action: func(c *cli.Context) error {
			names, err := positionalArgs(c)
			if err != nil {
				return err
			}
			return withAdmin(c, func(ctx context.Context, a adminSession) error {
				res, err := a.adm.DescribeUserSCRAMs(ctx, names...)
				if err != nil {
					return failure("list SCRAM credentials: %s", describeErr(err))
				}
				type cred struct {
					Mechanism  string `json:"mechanism"`
					Iterations int32  `json:"iterations"`
				}
				type user struct {
					User        string `json:"user"`
					Credentials []cred `json:"credentials"`
				}
				list := []user{}
				for _, d := range res.Sorted() {
					if d.Err != nil {
						return failure("user %q: %s", d.User, describeErrMsg(d.Err, d.ErrMessage))
					}
					u := user{User: d.User, Credentials: []cred{}}
					for _, ci := range d.CredInfos {
						u.Credentials = append(u.Credentials, cred{ci.Mechanism.String(), ci.Iterations})
					}
					list = append(list, u)
				}
				if a.out == outputJSON {
					return writeJSON(c.App.Writer, list)
				}
				t := newTable(c.App.Writer, "USER", "MECHANISM", "ITERATIONS")
				for _, u := range list {
					for _, ci := range u.Credentials {
						t.row(u.User, ci.Mechanism, ci.Iterations)
					}
				}
				return t.flush()
			})
		},
	})
}
