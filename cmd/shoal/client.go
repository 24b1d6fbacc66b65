package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"
)

// Timeouts for the client commands. Admin commands are bounded as a whole;
// the first contact with the cluster is bounded more tightly so an
// unreachable broker is reported in seconds.
const (
	dialTimeout    = 3 * time.Second
	connectTimeout = 5 * time.Second
	adminTimeout   = 30 * time.Second
)

// Exit codes: 1 for a failed operation, 2 for a bad command line.
const (
	exitFailure = 1
	exitUsage   = 2
)

// usageError is a bad command line: one line, exit code 2.
func usageError(format string, args ...any) error {
	return cli.Exit(fmt.Sprintf(format, args...), exitUsage)
}

// failure is a failed operation: one line, exit code 1.
func failure(format string, args ...any) error {
	return cli.Exit(oneLine(fmt.Sprintf(format, args...)), exitFailure)
}

// oneLine folds a message onto a single line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// onUsageError turns urfave/cli's flag parsing errors into one line on
// stderr (no help dump) with the usage exit code.
func onUsageError(c *cli.Context, err error, _ bool) error {
	return usageError("%s: %v (see 'shoal %s --help')", cmdName(c), err, cmdName(c))
}

// seedBrokers splits the global --bootstrap-server flag.
func seedBrokers(c *cli.Context) ([]string, error) {
	var seeds []string
	for _, s := range strings.Split(globalString(c, "bootstrap-server"), ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(s); err != nil {
			return nil, usageError("--bootstrap-server: %q is not host:port", s)
		}
		seeds = append(seeds, s)
	}
	if len(seeds) == 0 {
		return nil, usageError("--bootstrap-server: no broker address given")
	}
	return seeds, nil
}

// connect creates a client for the cluster named by --bootstrap-server
// and checks that a broker answers, so an unreachable cluster fails fast
// with one line instead of a stream of retries.
func connect(c *cli.Context, extra ...kgo.Opt) (*kgo.Client, *kadm.Client, error) {
	opts, err := clientOpts(c)
	if err != nil {
		return nil, nil, err
	}
	seeds, _ := seedBrokers(c)
	opts = append(opts, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, nil, usageError("client: %v", err)
	}
	ctx, cancel := context.WithTimeout(c.Context, connectTimeout)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		if ctx.Err() != nil {
			return nil, nil, failure("cannot reach broker at %s: no answer within %s", strings.Join(seeds, ","), connectTimeout)
		}
		return nil, nil, failure("cannot reach broker at %s: %s", strings.Join(seeds, ","), describeErr(err))
	}
	return cl, kadm.NewClient(cl), nil
}

// clientOpts are the options every client of a command starts from: the
// --bootstrap-server seeds, the --command-config security settings and the
// commands' timeouts.
func clientOpts(c *cli.Context) ([]kgo.Opt, error) {
	seeds, err := seedBrokers(c)
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.DialTimeout(dialTimeout),
		kgo.RequestTimeoutOverhead(5 * time.Second),
		kgo.RetryTimeout(15 * time.Second),
		kgo.ClientID("shoal-cli"),
	}
	sec, err := commandConfigOpts(c)
	if err != nil {
		return nil, err
	}
	return append(opts, sec...), nil
}

// adminContext bounds one admin command.
func adminContext(c *cli.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Context, adminTimeout)
}

// connectAdmin connects as connect does and bounds the admin work that
// follows with adminContext. closeAdmin ends both.
func connectAdmin(c *cli.Context) (cl *kgo.Client, adm *kadm.Client, ctx context.Context, closeAdmin func(), err error) {
	cl, adm, err = connect(c)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ctx, cancel := adminContext(c)
	return cl, adm, ctx, func() {
		cancel()
		cl.Close()
	}, nil
}

// adminSession is what an admin command works with once connected: the
// --output mode it prints in, the client for requests kadm does not wrap,
// and kadm's client over it.
type adminSession struct {
	out string
	cl  *kgo.Client
	adm *kadm.Client
}

// withAdmin runs the work of an admin command, fn, once its command line
// is parsed: it checks --output first, so that a bad --output is a usage
// error before any broker is contacted, connects as connect does, and
// bounds fn by adminTimeout. The client is closed when fn returns.
func withAdmin(c *cli.Context, fn func(ctx context.Context, a adminSession) error) error {
	return withAdminTimeout(c, adminTimeout, fn)
}

// withAdminTimeout is withAdmin for a command that waits on the cluster
// and so takes its bound from its own --timeout.
func withAdminTimeout(c *cli.Context, timeout time.Duration, fn func(ctx context.Context, a adminSession) error) error {
	out, err := outputMode(c)
	if err != nil {
		return err
	}
	cl, adm, err := connect(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(c.Context, timeout)
	defer cancel()
	return fn(ctx, adminSession{out: out, cl: cl, adm: adm})
}

// describeErr renders an error from the client on one line, preferring
// Kafka's error names ("TOPIC_ALREADY_EXISTS: ...") and the broker's
// message when there is one.
func describeErr(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out waiting for the broker"
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message + ": " + ke.Description
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "unable to dial: ")
	return oneLine(msg)
}

// describeErrMsg is describeErr plus the broker's own error message, when
// the response carried one.
func describeErrMsg(err error, brokerMsg string) string {
	brokerMsg = oneLine(brokerMsg)
	var ke *kerr.Error
	if brokerMsg == "" || !errors.As(err, &ke) {
		return describeErr(err)
	}
	// Brokers often repeat the error's own name and description first.
	for _, p := range []string{ke.Message + ": " + ke.Description, ke.Message} {
		brokerMsg = strings.TrimPrefix(brokerMsg, p)
		brokerMsg = strings.TrimSpace(strings.TrimPrefix(brokerMsg, ":"))
	}
	if brokerMsg == "" {
		return describeErr(err)
	}
	return ke.Message + ": " + brokerMsg
}
