// A FastCGI responder on Go's net/http/fcgi (standard library only), for the conformance suite.
// It accepts on the listening socket passed as fd 0, as fcgi.Serve(nil, ...) does, and serves
// the contract of test/conformance/README.md: CONF_ACTION selects echo (default), status,
// stderr, hold, release or aborts. GET_VALUES, multiplexing, ABORT_REQUEST and UNKNOWN_ROLE are
// net/http/fcgi's own.
package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/fcgi"
	"os"
	"strings"
	"sync"
	"time"
)

// Held requests by CONF_TOKEN, released by a "release" request: lets the suite keep a request
// in flight on the server for as long as it needs, without sleeps.
var (
	mu      sync.Mutex
	holds   = map[string]chan struct{}{}
	aborted int
)

func holdChannel(token string) chan struct{} {
	mu.Lock()
	defer mu.Unlock()
	ch, ok := holds[token]
	if !ok {
		ch = make(chan struct{})
		holds[token] = ch
	}
	return ch
}

func handle(w http.ResponseWriter, r *http.Request) {
	env := fcgi.ProcessEnv(r)
	w.Header().Set("Content-Type", "text/plain")
	switch env["CONF_ACTION"] {
	case "status":
		var code int
		fmt.Sscan(env["CONF_STATUS"], &code)
		w.Header().Add("X-Conf-Multi", "a")
		w.Header().Add("X-Conf-Multi", "b")
		w.WriteHeader(code)
		io.WriteString(w, "status")
	case "stderr":
		// net/http/fcgi offers no way to write FCGI_STDERR: the body alone comes back.
		io.WriteString(w, "stderr")
	case "hold":
		// Reading the body is how net/http/fcgi reports ABORT_REQUEST (while STDIN is open).
		if _, err := io.Copy(io.Discard, r.Body); errors.Is(err, fcgi.ErrRequestAborted) {
			mu.Lock()
			aborted++
			mu.Unlock()
		}
		select {
		case <-holdChannel(env["CONF_TOKEN"]):
		case <-time.After(30 * time.Second):
		}
		io.WriteString(w, "held")
	case "release":
		close(holdChannel(env["CONF_TOKEN"]))
		io.WriteString(w, "released")
	case "aborts":
		mu.Lock()
		fmt.Fprintf(w, "aborts=%d", aborted)
		mu.Unlock()
	default:
		echo(w, r, env)
	}
}

func echo(w http.ResponseWriter, r *http.Request, env map[string]string) {
	var count, total, sum uint32
	for name, value := range env {
		if !strings.HasPrefix(name, "CONF_BIG_") {
			continue
		}
		count++
		for i := 0; i < len(value); i++ {
			total++
			sum += uint32(value[i])
		}
	}
	w.Header().Set("X-Conf-Peer", "go")
	fmt.Fprintf(w, "method=%s\nquery=%s\nvalue=%s\nheader=%s\nbig=%d:%d:%d\nbody=", r.Method,
		r.URL.RawQuery, env["CONF_VALUE"], r.Header.Get("X-Conf"), count, total, sum)
	io.Copy(w, r.Body)
}

func main() {
	if err := fcgi.Serve(nil, http.HandlerFunc(handle)); err != nil {
		fmt.Fprintln(os.Stderr, "go_responder:", err)
		os.Exit(1)
	}
}
