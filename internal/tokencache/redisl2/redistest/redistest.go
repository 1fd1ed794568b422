// Package redistest starts a throwaway redis-server for tests: on a random
// loopback port, without persistence, killed when the test ends. Tests
// that need it skip where redis-server is not installed.
package redistest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// SkipMessage is why tests skip where redis-server is not installed.
const SkipMessage = "redis-server not installed: apt-get install redis-server (CI installs it)"

const (
	startAttempts = 5                // ports tried when another process takes ours first
	readyWithin   = 10 * time.Second // for redis-server to answer
	pollEvery     = 10 * time.Millisecond
	pidTimeout    = 250 * time.Millisecond // for one readiness check; a loaded machine retries
)

// Start starts a redis-server on a random loopback port and returns its
// host:port and a function that kills it (idempotent; it is also done when
// the test ends). It skips the test if redis-server is not installed.
func Start(t testing.TB) (addr string, stop func()) {
	t.Helper()
	s := StartServer(t)
	return s.Addr, s.Stop
}

// Options change the server StartServerWith starts. The zero value is
// Start's server: plain TCP, no password.
type Options struct {
	// Password, if not "", is required of clients (requirepass: the
	// default user's password).
	Password string
	// TLS, if not nil, is the certificate the server presents; it then
	// speaks TLS only, and does not ask clients for certificates.
	TLS *tls.Certificate
}

// Server is a redis-server child process of a test.
type Server struct {
	// Addr is the server's host:port on 127.0.0.1.
	Addr string

	t    testing.TB
	bin  string
	args []string // beyond port and persistence
	ping prober
	port int
	dir  string

	mu   sync.Mutex
	proc *process // nil while stopped
}

// StartServer is Start returning the Server, which can also be restarted
// on the same port. It skips the test if redis-server is not installed.
func StartServer(t testing.TB) *Server {
	t.Helper()
	return StartServerWith(t, Options{})
}

// StartServerWith is StartServer with opts. It skips the test if
// redis-server is not installed.
func StartServerWith(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			// CI installs redis-server: there, a missing one is a broken
			// CI script, not a reason to skip.
			t.Fatal(SkipMessage)
		}
		t.Skip(SkipMessage)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), ping: prober{password: opts.Password}}
	if opts.Password != "" {
		s.args = append(s.args, "--requirepass", opts.Password)
	}
	if opts.TLS != nil {
		if len(opts.TLS.Certificate) == 0 {
			t.Fatalf("redistest: Options.TLS has no certificate")
		}
		s.ping.tls, s.ping.leaf = true, opts.TLS.Certificate[0]
		cert, key, err := certFiles(s.dir, opts.TLS)
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		s.args = append(s.args, "--tls-cert-file", cert, "--tls-key-file", key, "--tls-auth-clients", "no")
	}
	t.Cleanup(s.Stop)
	var lastErr error
	for range startAttempts {
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: pick a port: %v", err)
		}
		p, err := s.start(port)
		if errors.Is(err, errPortTaken) {
			lastErr = err
			continue // someone took the port between our check and redis-server's bind
		}
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		s.port, s.proc = port, p
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		return s
	}
	t.Fatalf("redistest: no free port after %d attempts: %v", startAttempts, lastErr)
	return nil
}

// Stop kills the server and waits for it to exit. It does nothing if the
// server is stopped.
func (s *Server) Stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p != nil {
		p.kill()
	}
}

// Restart starts a stopped server again on the same port, empty. It fails
// the test if the server is running or the port has been taken meanwhile.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		t.Fatalf("redistest: Restart of a running server")
	}
	p, err := s.start(s.port)
	if err != nil {
		t.Fatalf("redistest: restart on port %d: %v", s.port, err)
	}
	s.proc = p
}

var errPortTaken = errors.New("port taken")

type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait returned
	out  *bytes.Buffer // redis-server's log; read only after done
}

func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// start runs redis-server on 127.0.0.1:port and waits until it, and not
// some other process on that port, answers.
func (s *Server) start(port int) (*process, error) {
	portArgs := []string{"--port", strconv.Itoa(port)}
	if s.ping.tls {
		portArgs = []string{"--port", "0", "--tls-port", strconv.Itoa(port)}
	}
	args := append(portArgs,
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
	)
	// t.Context ends just before cleanup, which kills the process anyway:
	// it only matters if the test binary is torn down some other way.
	cmd := exec.CommandContext(s.t.Context(), s.bin, append(args, s.args...)...)
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{}), out: out}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(readyWithin)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			if strings.Contains(out.String(), "already in use") {
				return nil, fmt.Errorf("%w: %d", errPortTaken, port)
			}
			return nil, fmt.Errorf("redis-server on port %d exited (%v):\n%s", port, cmd.ProcessState, out.String())
		default:
		}
		// Another process on the port may answer, or not; ours then exits,
		// and the next round reports the port taken.
		pid, err := s.ping.pid(addr)
		if err == nil && pid == cmd.Process.Pid {
			return p, nil
		}
		if err == nil {
			err = fmt.Errorf("port %d answered by process %d", port, pid)
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("redis-server on port %d did not answer within %s: %v\n%s", port, readyWithin, err, out.String())
		}
		select {
		case <-p.done:
		case <-tick.C:
		}
	}
}

// prober asks a server for its process ID, to know it is up and ours.
type prober struct {
	password string
	tls      bool
	leaf     []byte // with tls: the DER of the certificate the server must present
}

// pid asks the server at addr for its process ID (INFO server).
func (pr prober) pid(addr string) (int, error) {
	d := &net.Dialer{Timeout: pidTimeout}
	var conn net.Conn
	var err error
	if pr.tls {
		// Not chain verification: the server must present exactly the
		// certificate we gave it.
		cfg := &tls.Config{
			InsecureSkipVerify: true, //nolint:gosec // replaced by the pin below
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, pr.leaf) {
					return errors.New("not the certificate given to redis-server")
				}
				return nil
			},
		}
		conn, err = (&tls.Dialer{NetDialer: d, Config: cfg}).Dial("tcp", addr)
	} else {
		conn, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(pidTimeout)); err != nil {
		return 0, err
	}
	r := bufio.NewReader(conn)
	if pr.password != "" {
		if _, err := io.WriteString(conn, command("AUTH", pr.password)); err != nil {
			return 0, err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if !strings.HasPrefix(line, "+OK") {
			return 0, errors.New("AUTH refused")
		}
	}
	if _, err := io.WriteString(conn, command("INFO", "server")); err != nil {
		return 0, err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, "$") {
		return 0, fmt.Errorf("INFO answered %q", line) // e.g. -LOADING, -NOAUTH
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 {
		return 0, fmt.Errorf("INFO answered %q", line)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, err
	}
	for l := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO server has no process_id")
}

// command encodes a Redis command as a RESP array of bulk strings.
func command(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// certFiles writes c's chain and key as PEM files in dir for redis-server.
func certFiles(dir string, c *tls.Certificate) (certFile, keyFile string, err error) {
	var chain []byte
	for _, der := range c.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return "", "", fmt.Errorf("server key: %w", err)
	}
	key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := os.WriteFile(certFile, chain, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// freePort asks the kernel for a free loopback port. It is free when this
// returns, not necessarily when redis-server binds it: start checks.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
