package samlocal

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
)

// forwarder relays TCP connections from a listener on the Docker bridge to one
// emulator on 127.0.0.1.
//
// Why it exists: `sam local invoke --docker-network host` does not put the function's
// container on the host network (SAM 1.170 only skips connecting it to a named
// network, so it stays on the default bridge), and on the bridge 127.0.0.1 is the
// container itself: the measured "connection refused". A container reaches the host
// at the bridge's gateway address, where nothing listens, since every emulator binds
// loopback only. Rather than binding the emulators wider, each one gets a relay on the
// gateway address for the duration of the run: reachable from the host and its
// containers, not from the network.
type forwarder struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// forward listens on host:0 and relays every connection to the host:port of target
// (a URL such as http://127.0.0.1:4566). It returns the relay and target rewritten to
// point at it.
func forward(host, target string) (*forwarder, string, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, "", fmt.Errorf("samlocal: endpoint %q is not a URL", target)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, "", fmt.Errorf("samlocal: listen on the Docker bridge %s: %w", host, err)
	}
	f := &forwarder{ln: ln, target: u.Host, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.serve()
	u.Host = ln.Addr().String()
	return f, u.String(), nil
}

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go f.relay(c)
	}
}

func (f *forwarder) relay(c net.Conn) {
	defer f.wg.Done()
	up, err := net.Dial("tcp", f.target)
	if err != nil {
		c.Close()
		return
	}
	if !f.track(c, up) {
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	f.untrack(c, up)
}

func (f *forwarder) track(cs ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		f.conns[c] = struct{}{}
	}
	return true
}

func (f *forwarder) untrack(cs ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(f.conns, c)
	}
}

// Close stops listening, ends the open relays and waits for them.
func (f *forwarder) Close() error {
	err := f.ln.Close()
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
