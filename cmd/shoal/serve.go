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
			if os.Getenv("GOGC") == "" {
				// The broker's live heap is small and its garbage is
				// per-request buffers: collecting at 5x the live heap
				// instead of 2x cuts GC pauses off the latency tail for a
				// few tens of MB.
				debug.SetGCPercent(400)
			}
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
