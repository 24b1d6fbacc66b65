//go:build !unix

package raftmeta

import "net"

// peekHello cannot look ahead here: every connection is taken for a Kafka
// one, so learners need a platform with MSG_PEEK.
func peekHello(net.Conn) (bool, error) { return false, nil }
