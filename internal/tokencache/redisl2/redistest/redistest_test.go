package redistest

import (
	"crypto/tls"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/obo-gateway/obo-gateway/internal/pki"
)

func TestStartStopRestart(t *testing.T) {
	s := StartServer(t)
	pid, err := s.ping.pid(s.Addr)
	if err != nil {
		t.Fatalf("server at %s: %v", s.Addr, err)
	}
	if pid != s.proc.cmd.Process.Pid {
		t.Fatalf("server at %s is process %d, want %d", s.Addr, pid, s.proc.cmd.Process.Pid)
	}

	s.Stop()
	s.Stop() // idempotent
	if _, err := s.ping.pid(s.Addr); err == nil {
		t.Fatal("server answers after Stop")
	}

	s.Restart(t)
	if _, err := s.ping.pid(s.Addr); err != nil {
		t.Fatalf("server after Restart: %v", err)
	}

	addr, stop := Start(t)
	if addr == s.Addr {
		t.Fatalf("two servers on %s", addr)
	}
	stop()
}

// A port taken by the time redis-server binds it is reported as such, so
// StartServer tries another: whether a plain listener or another
// redis-server (which answers, but with its own process ID) has it.
func TestPortTaken(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip(SkipMessage)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	if _, err := s.start(l.Addr().(*net.TCPAddr).Port); !errors.Is(err, errPortTaken) {
		t.Errorf("start on a listener's port: %v, want errPortTaken", err)
	}

	other := StartServer(t)
	_, portStr, _ := net.SplitHostPort(other.Addr)
	port, _ := strconv.Atoi(portStr)
	if _, err := s.start(port); !errors.Is(err, errPortTaken) {
		t.Errorf("start on another redis-server's port: %v, want errPortTaken", err)
	}
}

func TestStartWithTLSAndPassword(t *testing.T) {
	ca, err := pki.NewCA("redistest CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueServer(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s := StartServerWith(t, Options{Password: "s3cret", TLS: &cert})
	conn, err := tls.Dial("tcp", s.Addr, &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		t.Fatalf("TLS to %s: %v", s.Addr, err)
	}
	conn.Close()
	if _, err := (prober{tls: true, leaf: cert.Certificate[0]}).pid(s.Addr); err == nil {
		t.Error("INFO without AUTH answered")
	}
	if _, err := (prober{password: "s3cret"}).pid(s.Addr); err == nil {
		t.Error("plain TCP answered on the TLS port")
	}
	s.Stop()
	s.Restart(t)
	if _, err := s.ping.pid(s.Addr); err != nil {
		t.Errorf("after Restart: %v", err)
	}
}
