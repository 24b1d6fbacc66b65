package main

// shoal quota set|list: client quotas, as Kafka's kafka-configs.sh
// --entity-type users|clients|ips does, with AlterClientQuotas and
// DescribeClientQuotas.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/urfave/cli/v2"
)

func quotaCommand() *cli.Command {
	return commandGroup("quota", "set and list client quotas (producer_byte_rate, consumer_byte_rate, request_percentage, connection_creation_rate)",
		`shoal quota set --client-id slow-producer --set producer_byte_rate=1048576
shoal quota set --user alice --client-id-default --set consumer_byte_rate=2097152
shoal quota set --ip 10.0.0.7 --set connection_creation_rate=10
shoal quota set --client-id busy-client --set request_percentage=0.2
shoal quota list --user alice`,
		quotaSetCommand(),
		quotaListCommand(),
	)
}

// quotaEntityFlags name an entity: each type by name or as its default.
func quotaEntityFlags() []cli.Flag {
	var out []cli.Flag
	for _, typ := range []string{"user", "client-id", "ip"} {
		out = append(out,
			&cli.StringFlag{Name: typ, Usage: "the " + typ + " the quota is set on"},
			&cli.BoolFlag{Name: typ + "-default", Usage: "the default " + typ + " quota (applies to each " + typ + " without its own)"},
		)
	}
	return out
}

// quotaEntity reads the entity flags: components in Kafka's order, a nil
// name for a default.
func quotaEntity(c *cli.Context) (kadm.ClientQuotaEntity, error) {
	var e kadm.ClientQuotaEntity
	for _, typ := range []string{"user", "client-id", "ip"} {
		switch {
		case c.IsSet(typ) && c.Bool(typ+"-default"):
			return nil, usageError("give --%s or --%s-default, not both", typ, typ)
		case c.IsSet(typ):
			name := c.String(typ)
			e = append(e, kadm.ClientQuotaEntityComponent{Type: typ, Name: &name})
		case c.Bool(typ + "-default"):
			e = append(e, kadm.ClientQuotaEntityComponent{Type: typ})
		}
	}
	return e, nil
}

// entityString renders an entity as user=alice,client-id=<default>.
func entityString(e kadm.ClientQuotaEntity) string {
	parts := make([]string, len(e))
	for i, c := range e {
		parts[i] = c.String()
	}
	return strings.Join(parts, ",")
}

func quotaSetCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "set",
		Usage: "set or remove quotas of one entity (AlterClientQuotas)",
		UsageText: `shoal quota set (--user NAME | --user-default) [--client-id NAME | --client-id-default] [--set key=value ...] [--delete key ...]
shoal quota set (--ip ADDRESS | --ip-default) --set connection_creation_rate=N

example: shoal quota set --client-id slow-producer --set producer_byte_rate=1048576
example: shoal quota set --user-default --set consumer_byte_rate=10485760 --delete producer_byte_rate
example: shoal quota set --client-id busy-client --set request_percentage=0.2
example: shoal quota set --ip 127.0.0.2 --set connection_creation_rate=5`,
		Flags: append(quotaEntityFlags(),
			listFlag("set", nil, "set a quota: key=value (repeatable)"),
			listFlag("delete", nil, "remove a quota key (repeatable)"),
		),
		Action: func(c *cli.Context) error {
			entity, err := quotaEntity(c)
			if err != nil {
				return err
			}
			if len(entity) == 0 {
				return usageError("quota set: name an entity: --user, --client-id or --ip (or their -default)")
			}
			set, order, err := parseKeyValues("set", listFlagValues(c, "set"))
			if err != nil {
				return err
			}
			del := listFlagValues(c, "delete")
			if len(set) == 0 && len(del) == 0 {
				return usageError("quota set: nothing to change; give --set key=value and/or --delete key")
			}
			var ops []kadm.AlterClientQuotaOp
			values := map[string]float64{}
			for _, k := range order {
				v, err := strconv.ParseFloat(strings.TrimSpace(set[k]), 64)
				if err != nil {
					return usageError("--set %s: %q is not a number", k, set[k])
				}
				values[k] = v
				ops = append(ops, kadm.AlterClientQuotaOp{Key: k, Value: v})
			}
			for _, k := range del {
				ops = append(ops, kadm.AlterClientQuotaOp{Key: k, Remove: true})
			}
			return withAdmin(c, func(ctx context.Context, a adminSession) error {
				res, err := a.adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: entity, Ops: ops}})
				if err != nil {
					return failure("alter quotas of %s: %s", entityString(entity), describeErr(err))
				}
				for _, r := range res {
					if r.Err != nil {
						return failure("alter quotas of %s: %s", entityString(entity), describeErrMsg(r.Err, r.ErrMessage))
					}
				}
				if a.out == outputJSON {
					return writeJSON(c.App.Writer, struct {
						Entity  string             `json:"entity"`
						Set     map[string]float64 `json:"set"`
						Removed []string           `json:"removed"`
					}{entityString(entity), values, append([]string{}, del...)})
				}
				fmt.Fprintf(c.App.Writer, "altered quotas of %s\n", entityString(entity))
				return nil
			})
		},
	})
}

func quotaListCommand() *cli.Command {
	return leaf(&cli.Command{
		Name:  "list",
		Usage: "list client quotas, all or those of the entities the flags name (DescribeClientQuotas)",
		UsageText: `shoal quota list [--user NAME | --user-default] [--client-id NAME | --client-id-default] [--ip ADDRESS | --ip-default] [--strict]

example: shoal quota list
example: shoal quota list --client-id slow-producer`,
		Flags: append(quotaEntityFlags(),
			&cli.BoolFlag{Name: "strict", Usage: "only entities with exactly the named components"},
		),
		Action: func(c *cli.Context) error {
			entity, err := quotaEntity(c)
			if err != nil {
				return err
			}
			var filter []kadm.DescribeClientQuotaComponent
			for _, comp := range entity {
				f := kadm.DescribeClientQuotaComponent{Type: comp.Type, MatchName: comp.Name, MatchType: 0}
				if comp.Name == nil {
					f.MatchType = 1 // DEFAULT
				}
				filter = append(filter, f)
			}
			return withAdmin(c, func(ctx context.Context, a adminSession) error {
				described, err := a.adm.DescribeClientQuotas(ctx, c.Bool("strict"), filter)
				if err != nil {
					return failure("list quotas: %s", describeErr(err))
				}
				type quota struct {
					Entity string             `json:"entity"`
					Values map[string]float64 `json:"values"`
				}
				list := []quota{}
				for _, d := range described {
					q := quota{Entity: entityString(d.Entity), Values: map[string]float64{}}
					for _, v := range d.Values {
						q.Values[v.Key] = v.Value
					}
					list = append(list, q)
				}
				if a.out == outputJSON {
					return writeJSON(c.App.Writer, list)
				}
				t := newTable(c.App.Writer, "ENTITY", "KEY", "VALUE")
				for _, q := range list {
					keys := make([]string, 0, len(q.Values))
					for k := range q.Values {
						keys = append(keys, k)
					}
					slices.Sort(keys)
					for _, k := range keys {
						t.row(q.Entity, k, strconv.FormatFloat(q.Values[k], 'f', -1, 64))
					}
				}
				return t.flush()
			})
		},
	})
}
