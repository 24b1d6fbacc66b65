package main

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"
)

// recordWriter prints one consumed record: a --format template, or one JSON
// object per line with --output json.
type recordWriter interface {
	write(w io.Writer, r *kgo.Record)
}

// Byte encodings of keys, values and header values in JSON records
// (consume --encoding).
const (
	encodingUTF8   = "utf8"
	encodingBase64 = "base64"
	encodingHex    = "hex"
)

// jsonRecords prints each record as one JSON object on its own line, so
// the output is a stream any JSON-lines reader (jq) parses.
type jsonRecords struct {
	encoding string
}

// jsonRecord is the object consume prints for a record: where it is, then
// the record as log dump prints it too.
type jsonRecord struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	recordJSON
}

// recordJSON is a record as consume and log dump print it in JSON. A null
// key or value is JSON null; an empty one is "".
type recordJSON struct {
	Offset    int64        `json:"offset"`
	Timestamp int64        `json:"timestamp"`
	Key       *string      `json:"key"`
	Value     *string      `json:"value"`
	Headers   []headerJSON `json:"headers"`
}

type headerJSON struct {
	Key   string  `json:"key"`
	Value *string `json:"value"`
}

func (j jsonRecords) encode(b []byte) *string {
	if b == nil {
		return nil
	}
	var s string
	switch j.encoding {
	case encodingBase64:
		s = base64.StdEncoding.EncodeToString(b)
	case encodingHex:
		s = hex.EncodeToString(b)
	default:
		s = string(b)
	}
	return &s
}

func (j jsonRecords) write(w io.Writer, r *kgo.Record) {
	rec := jsonRecord{Topic: r.Topic, Partition: r.Partition, recordJSON: recordJSON{
		Offset:    r.Offset,
		Timestamp: r.Timestamp.UnixMilli(),
		Key:       j.encode(r.Key),
		Value:     j.encode(r.Value),
		Headers:   make([]headerJSON, 0, len(r.Headers)),
	}}
	for _, h := range r.Headers {
		rec.Headers = append(rec.Headers, headerJSON{Key: h.Key, Value: j.encode(h.Value)})
	}
	// A record of plain fields always marshals.
	b, _ := json.Marshal(rec)
	w.Write(b)
	io.WriteString(w, "\n")
}

// recordWriterFor picks how consume prints records from --output, --format
// and --encoding.
func recordWriterFor(c *cli.Context) (recordWriter, error) {
	mode, err := outputMode(c)
	if err != nil {
		return nil, err
	}
	enc := strings.ToLower(c.String("encoding"))
	switch enc {
	case encodingUTF8, encodingBase64, encodingHex:
	default:
		return nil, usageError("consume: --encoding: %q is not one of utf8, base64, hex", c.String("encoding"))
	}
	if mode == outputJSON {
		if c.IsSet("format") {
			return nil, usageError("consume: give --format or --output json, not both")
		}
		return jsonRecords{encoding: enc}, nil
	}
	if c.IsSet("encoding") {
		return nil, usageError("consume: --encoding applies to --output json")
	}
	return compileFormat(c.String("format"))
}

// printPolls polls consumer and hands each poll's fetches to print, which
// writes records to the buffered stdout w and counts them in *printed,
// until print reports it is done or fails, a poll fails, or Ctrl-C or
// SIGTERM arrives (then the count printed so far is reported on stderr).
func printPolls(c *cli.Context, consumer *kgo.Client, printed *int64, print func(w *bufio.Writer, fetches kgo.Fetches) (done bool, err error)) error {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	w := bufio.NewWriterSize(c.App.Writer, 64<<10)
	defer w.Flush()
	for {
		fetches := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			reportInterrupted(c, w, *printed)
			return nil
		}
		if err := pollErrors(c, w, fetches); err != nil {
			w.Flush()
			return err
		}
		if done, err := print(w, fetches); done || err != nil {
			return err
		}
	}
}

// reportInterrupted tells the user, on stderr, how many records a consume
// run printed before it was interrupted (Ctrl-C), as Kafka's console
// consumer does, after the records already written.
func reportInterrupted(c *cli.Context, w *bufio.Writer, printed int64) {
	w.Flush()
	fmt.Fprintf(c.App.ErrWriter, "interrupted: consumed %d %s\n", printed, plural(printed, "record", "records"))
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
