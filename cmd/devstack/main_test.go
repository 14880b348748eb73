package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/internal/localstack/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Run(m))
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string // in stdout+stderr
	}{
		{[]string{"help"}, 0, "devstack token"},
		{[]string{"-h"}, 0, "devstack fire <FunctionLogicalId>"},
		{[]string{"--help"}, 0, "devstack invoke <FunctionLogicalId>"},
		{[]string{"help", "fire"}, 0, "--time"},
		{[]string{"help", "invoke"}, 0, "make invoke FN="},
		{[]string{"serve", "-h"}, 0, "--port"},
		{[]string{"-port", "x"}, 2, "invalid value"},
		{[]string{"token", "-h"}, 0, "--tenant"},
		{[]string{"help", "nope"}, 2, `unknown command "nope"`},
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"fire"}, 2, "usage: devstack fire"},
		{[]string{"fire", "X", "--time", "yesterday"}, 2, "want RFC 3339"},
		{[]string{"invoke"}, 2, "usage: devstack invoke"},
		{[]string{"stripe-event", "invoice.paid"}, 2, "usage: devstack stripe-event"},
		{[]string{"help", "stripe-event"}, 0, "--tenant"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if code := run(tt.args, &out, &out); code != tt.code || !strings.Contains(out.String(), tt.want) {
			t.Errorf("devstack %v: exit %d (want %d), output lacks %q:\n%s", tt.args, code, tt.code, tt.want, out.String())
		}
	}
}
