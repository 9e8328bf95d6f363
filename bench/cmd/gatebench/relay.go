package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
)

// relayMain is a bare TCP relay: every connection to -listen is joined to
// a new one to -to and the bytes are copied both ways with io.Copy, which
// Go does by splice(2) between two TCP sockets. It reads no HTTP, keeps no
// deadline and checks nothing, so what it reaches on /blob is what the
// extra hop itself allows on this machine: the ceiling of any proxy, and
// the yardstick for the download target against direct.
func relayMain(args []string) int {
	fs := flag.NewFlagSet("gatebench relay", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to accept on")
	to := fs.String("to", "", "address to relay to")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatebench relay:", err)
		return 1
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "gatebench relay:", err)
			return 1
		}
		go relayConn(c, *to)
	}
}

func relayConn(c net.Conn, to string) {
	defer c.Close()
	b, err := net.Dial("tcp", to)
	if err != nil {
		return
	}
	defer b.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(b, c)
		b.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(c, b)
	c.(*net.TCPConn).CloseWrite()
	<-done
}
