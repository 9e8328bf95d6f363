//go:build !linux

package forward

import (
	"context"
	"net"
	"net/http"
)

// spliceBody is Linux's zero-copy body path (splice_linux.go); elsewhere
// the copy loop sends every body.
func (d *direct) spliceBody(http.ResponseWriter, *http.Request, *directConn, *http.Response) (bool, error, error) {
	return false, nil, nil
}

// WithClientConn is an http.Server's ConnContext; only Linux's splice path
// uses the connection.
func WithClientConn(ctx context.Context, _ net.Conn) context.Context { return ctx }
