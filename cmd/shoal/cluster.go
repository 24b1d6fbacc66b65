package main

import (
	"fmt"
	"net"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/urfave/cli/v2"
)

func clusterCommand() *cli.Command {
	return &cli.Command{
		Name:  "cluster",
		Usage: "inspect the cluster",
		UsageText: `shoal cluster describe
shoal --bootstrap-server 10.0.0.1:9092 --output json cluster describe`,
		Action:       unknownSubcommand,
		OnUsageError: onUsageError,
		Subcommands: []*cli.Command{
			leaf(&cli.Command{
				Name:      "describe",
				Usage:     "show the cluster id, the active controller and the brokers",
				UsageText: "shoal cluster describe\nshoal --output json cluster describe",
				Action:    clusterDescribe,
			}),
		},
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

// clusterBroker is one broker in cluster describe's JSON output.
type clusterBroker struct {
	ID   int32   `json:"id"`
	Host string  `json:"host"`
	Port int32   `json:"port"`
	Rack *string `json:"rack"`
}

type clusterInfo struct {
	ClusterID    string          `json:"cluster_id"`
	ControllerID int32           `json:"controller_id"`
	Brokers      []clusterBroker `json:"brokers"`
}

func clusterDescribe(c *cli.Context) error {
	if c.Args().Len() > 0 {
		return usageError("cluster describe: unexpected argument %q", c.Args().First())
	}
	out, err := outputMode(c)
	if err != nil {
		return err
	}
	cl, _, ctx, closeAdmin, err := connectAdmin(c)
	if err != nil {
		return err
	}
	defer closeAdmin()

	req := kmsg.NewPtrDescribeClusterRequest()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return failure("describe cluster: %s", describeErr(err))
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		msg := ""
		if resp.ErrorMessage != nil {
			msg = *resp.ErrorMessage
		}
		return failure("describe cluster: %s", describeErrMsg(err, msg))
	}
	info := clusterInfo{ClusterID: resp.ClusterID, ControllerID: resp.ControllerID, Brokers: []clusterBroker{}}
	for _, b := range resp.Brokers {
		info.Brokers = append(info.Brokers, clusterBroker{ID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
	}
	sort.Slice(info.Brokers, func(i, j int) bool { return info.Brokers[i].ID < info.Brokers[j].ID })

	w := c.App.Writer
	if out == outputJSON {
		return writeJSON(w, info)
	}
	fmt.Fprintf(w, "Cluster ID:    %s\n", info.ClusterID)
	fmt.Fprintf(w, "Controller ID: %d\n\n", info.ControllerID)
	t := newTable(w, "BROKER", "ADDRESS", "RACK")
	for _, b := range info.Brokers {
		rack := "-"
		if b.Rack != nil && *b.Rack != "" {
			rack = *b.Rack
		}
		t.row(b.ID, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))), rack)
	}
	return t.flush()
}
