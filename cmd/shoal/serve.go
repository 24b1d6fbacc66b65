package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/config"
	"github.com/shoalmq/shoal/logging"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:         "serve",
		OnUsageError: onUsageError,
		Usage:        "run a shoal node (with no flags: a single-node cluster on 127.0.0.1:9092, data in ./shoal-data)",
		UsageText: `shoal serve
shoal serve --config server.properties
shoal serve --set log.dirs=/var/lib/shoal --set listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://127.0.0.1:9093 --set advertised.listeners=PLAINTEXT://broker1.example.com:9092`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "server.properties file with Kafka's key names"},
			&cli.StringSliceFlag{Name: "set", Usage: "override one key: --set key=value (repeatable; beats SHOAL_* variables and the file)"},
			&cli.StringFlag{Name: "log-level", Usage: "shorthand for --set log.level=...: debug, info, warn or error, with component=level overrides (info,request=debug)"},
		},
		Action: func(c *cli.Context) error {
			sets := c.StringSlice("set")
			if c.IsSet("log-level") {
				sets = append(sets, "log.level="+c.String("log-level"))
			}
			cfg, err := config.Load(c.String("config"), os.Environ(), sets)
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			logger, err := logging.New(os.Stderr, cfg.LogFormat, cfg.LogLevel)
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			for _, k := range cfg.Ignored {
				logger.Info("Kafka config key configures nothing in shoal; ignored", "key", k)
			}
			setGCPolicy()
			srv, err := broker.Start(cfg, broker.Options{Logger: logger})
			if err != nil {
				return cli.Exit(err.Error(), 1)
			}
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			s := <-sig
			logger.Info("shutting down", "signal", s.String())
			if err := srv.Close(); err != nil {
				return cli.Exit(fmt.Sprintf("shutdown: %v", err), 1)
			}
			logger.Info("stopped cleanly")
			return nil
		},
	}
}

// setGCPolicy chooses how often the broker collects garbage, unless GOGC
// says so. The broker's live heap is small and its garbage is per-request
// buffers, so collecting less often takes GC off the latency tail:
//
//   - with GOMEMLIMIT set (a container's memory less some headroom), the
//     heap may grow to that limit before a collection: GOGC is turned off
//     and the limit alone paces the collector;
//   - without it, collecting at 5x the live heap instead of 2x (GOGC=400)
//     costs a few tens of MB.
func setGCPolicy() {
	if os.Getenv("GOGC") != "" {
		return
	}
	if os.Getenv("GOMEMLIMIT") != "" {
		debug.SetGCPercent(-1)
		return
	}
	debug.SetGCPercent(400)
}
