package bench

import (
	"context"
	"errors"
	"io"
	"net"
	"time"
)

// Net measures what one loopback TCP stream moves on this machine: the
// ceiling any broker on it works under, to read the other figures against.
// It streams total bytes in chunk-sized writes from one goroutine to
// another through 127.0.0.1.
func Net(ctx context.Context, total int64, chunk int) (Result, error) {
	if total <= 0 || chunk <= 0 {
		return Result{}, errors.New("bench net: bytes and chunk size must be positive")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, err
	}
	defer ln.Close()
	got := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		n, err := io.CopyBuffer(io.Discard, c, make([]byte, chunk))
		if err == nil && n != total {
			err = io.ErrUnexpectedEOF
		}
		got <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return Result{}, err
	}
	buf := make([]byte, chunk)
	start := time.Now()
	for sent := int64(0); sent < total; {
		if err := ctx.Err(); err != nil {
			c.Close()
			return Result{}, err
		}
		n := int(min(int64(chunk), total-sent))
		if _, err := c.Write(buf[:n]); err != nil {
			c.Close()
			return Result{}, err
		}
		sent += int64(n)
	}
	c.Close()
	if err := <-got; err != nil {
		return Result{}, err
	}
	r := Result{Records: total / int64(chunk), Bytes: total, Elapsed: time.Since(start)}
	r.finish()
	return r, nil
}
