package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
)

// relayMain is a bare TCP relay: every connection to -listen is joined to
// a new one to -to and the bytes are copied both ways (relayCopy). It
// reads no HTTP, keeps no deadline and checks nothing, so what it costs on
// /1k is what the system calls alone cost, and what it reaches on /blob is
// what the extra hop itself allows on this machine: the ceiling of any
// proxy, and the yardstick for the download target against direct.
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
		relayCopy(b.(*net.TCPConn), c.(*net.TCPConn))
		close(done)
	}()
	relayCopy(c.(*net.TCPConn), b.(*net.TCPConn))
	<-done
}

// relayCopy copies src to dst by read and write while the reads come in
// small, as small requests and answers do, and by splice(2) (io.Copy
// between two TCP sockets) once a read fills the buffer — as gatehouse
// splices only large bodies, since a splice costs two system calls a
// chunk where a small copy costs one.
func relayCopy(dst, src *net.TCPConn) {
	defer dst.CloseWrite()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
		if n == len(buf) {
			io.Copy(dst, src)
			return
		}
	}
}
