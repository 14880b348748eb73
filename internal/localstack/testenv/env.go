package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Services started lazily, once per test binary, and stopped by Run.
var (
	mu      sync.Mutex
	moto    *Moto
	closers []func()
)

// Run runs the tests of a package and then stops every service testenv started for it.
// Use it from TestMain: os.Exit(testenv.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	StopAll()
	return code
}

// StopAll stops every service started by this process, newest first.
func StopAll() {
	mu.Lock()
	defer mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
	closers, moto = nil, nil
}

// OnStop registers f to run at StopAll.
func OnStop(f func()) {
	mu.Lock()
	defer mu.Unlock()
	closers = append(closers, f)
}

// MotoEndpoint returns the endpoint of moto: $TENANTFLOW_MOTO_URL if set, else a moto
// server started once for this test binary.
func MotoEndpoint(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("TENANTFLOW_MOTO_URL"); u != "" {
		return u
	}
	mu.Lock()
	defer mu.Unlock()
	if moto == nil {
		m, err := StartMoto()
		if err != nil {
			t.Fatalf("start moto: %v", err)
		}
		moto = m
		closers = append(closers, m.Close)
	}
	return moto.Endpoint
}

var prefixSeq atomic.Int64

// UniquePrefix returns a resource-name prefix no other test of this run uses.
func UniquePrefix(t testing.TB) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("t%d-%d-%s-", time.Now().UnixNano()%1e6, prefixSeq.Add(1), name)
}

// Tables creates a fresh copy of every template.yaml table on moto for this test and
// returns a DynamoDB client and logical id → table name.
func Tables(t testing.TB) (*dynamodb.Client, map[string]string) {
	t.Helper()
	db := dynamodb.NewFromConfig(AWSConfig(MotoEndpoint(t)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names, err := CreateTables(ctx, db, UniquePrefix(t))
	if err != nil {
		t.Fatalf("create tables: %v", err)
	}
	return db, names
}
