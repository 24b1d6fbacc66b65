package main

// shoal config set|describe: dynamic broker configs, as Kafka's
// kafka-configs.sh --entity-type brokers (--entity-name N or
// --entity-default) does, with IncrementalAlterConfigs and DescribeConfigs
// on BROKER resources.

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"
)

func configCommand() *cli.Command {
	return commandGroup("config", "change and describe broker configs at runtime (one broker or the cluster-wide default)",
		`shoal config set --cluster --set log.retention.ms=86400000
shoal config set --broker 1 --set log.segment.bytes=268435456 --delete log.retention.ms
shoal config describe --broker 1`,
		configSetCommand(),
		configDescribeCommand(),
	)
}

func brokerTargetFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "broker", Usage: "the broker id whose own configs to change or describe"},
		&cli.BoolFlag{Name: "cluster", Usage: "the cluster-wide default every broker falls back to"},
	}
}

// brokerTarget reads --broker N or --cluster: the brokers argument of
// kadm's broker config calls (none: the cluster default) and the resource
// name to print.
func brokerTarget(c *cli.Context) ([]int32, string, error) {
	switch {
	case c.IsSet("broker") && c.Bool("cluster"):
		return nil, "", usageError("give --broker N or --cluster, not both")
	case c.Bool("cluster"):
		return nil, "", nil
	case c.IsSet("broker"):
		id, err := intFlagValue(c, "broker", 0, 1<<31-1)
		if err != nil {
			return nil, "", err
		}
		return []int32{int32(id)}, c.String("broker"), nil
	}
	return nil, "", usageError("give --broker N or --cluster")
}

// brokerLabel names a BROKER resource for people.
func brokerLabel(resource string) string {
	if resource == "" {
		return "cluster default"
	}
	return "broker " + resource
}

func configSetCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "set",
		Usage: "set or remove dynamic broker configs (IncrementalAlterConfigs); only keys Kafka lets change at runtime",
		UsageText: `shoal config set (--broker N | --cluster) [--set key=value ...] [--delete key ...]

example: shoal config set --cluster --set log.retention.ms=1000
example: shoal config set --broker 1 --set log.cleaner.min.cleanable.ratio=0.3 --delete log.retention.ms
example: shoal config set --cluster --set max.connections=5
example: shoal config set --broker 1 --set listener.name.ssl.ssl.keystore.location=/etc/shoal/keystore-2.pem --set listener.name.ssl.ssl.key.password=key-secret`,
		Flags: append(brokerTargetFlags(),
			listFlag("set", nil, "set a config: key=value (repeatable)"),
			listFlag("delete", nil, "remove a dynamic override, back to the static or default value (repeatable)"),
		),
		Action: func(c *cli.Context) error {
			brokers, resource, err := brokerTarget(c)
			if err != nil {
				return err
			}
			ch, err := parseConfigChanges(c, "config set")
			if err != nil {
				return err
			}
			return withAdmin(c, func(ctx context.Context, a adminSession) error {
				resps, err := a.adm.AlterBrokerConfigs(ctx, ch.alters, brokers...)
				if err := alterConfigsFailure(resps, err, "alter "+brokerLabel(resource)+" configs", nil); err != nil {
					return err
				}
				if a.out == outputJSON {
					return writeJSON(c.App.Writer, struct {
						Broker  string            `json:"broker"`
						Set     map[string]string `json:"set"`
						Deleted []string          `json:"deleted"`
					}{resource, ch.setMap(), append([]string{}, ch.del...)})
				}
				fmt.Fprintf(c.App.Writer, "altered %s configs: %s\n", brokerLabel(resource), ch.summary())
				return nil
			})
		},
	})
}

func configDescribeCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "describe",
		Usage: "describe a broker's configs with their sources, or the cluster-wide dynamic defaults",
		UsageText: `shoal config describe (--broker N | --cluster)

example: shoal config describe --broker 1
example: shoal config describe --cluster`,
		Flags: brokerTargetFlags(),
		Action: func(c *cli.Context) error {
			brokers, resource, err := brokerTarget(c)
			if err != nil {
				return err
			}
			return withAdmin(c, func(ctx context.Context, a adminSession) error {
				rs, err := a.adm.DescribeBrokerConfigs(ctx, brokers...)
				if err != nil {
					return failure("describe %s configs: %s", brokerLabel(resource), describeErr(err))
				}
				// synonym is one layer that sets a config, most specific
				// first: the first is where the value comes from.
				type synonym struct {
					Name   string  `json:"name"`
					Value  *string `json:"value"`
					Source string  `json:"source"`
				}
				type entry struct {
					Name      string    `json:"name"`
					Value     *string   `json:"value"`
					Source    string    `json:"source"`
					Sensitive bool      `json:"sensitive"`
					Synonyms  []synonym `json:"synonyms"`
				}
				list := []entry{}
				for _, r := range rs {
					if r.Err != nil {
						return failure("describe %s configs: %s", brokerLabel(resource), describeErrMsg(r.Err, r.ErrMessage))
					}
					for _, cfg := range r.Configs {
						e := entry{cfg.Key, cfg.Value, cfg.Source.String(), cfg.Sensitive, []synonym{}}
						for _, sy := range cfg.Synonyms {
							e.Synonyms = append(e.Synonyms, synonym{sy.Key, sy.Value, sy.Source.String()})
						}
						list = append(list, e)
					}
				}
				return printRows(c.App.Writer, a.out, list, []string{"NAME", "VALUE", "SOURCE"}, func(e entry) []any {
					v := "(sensitive)"
					if !e.Sensitive {
						v = deref(e.Value)
					}
					return []any{e.Name, v, e.Source}
				})
			})
		},
	})
}
