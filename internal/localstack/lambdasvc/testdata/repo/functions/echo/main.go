// Command echo is a test Lambda function whose behaviour is chosen by the event.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// BoomError is a typed error: aws-lambda-go reports its type name as errorType.
type BoomError struct{}

func (*BoomError) Error() string { return "boom: the handler failed on purpose" }

type event struct {
	Mode  string `json:"mode"`
	MS    int    `json:"ms"`
	Code  int    `json:"code"`
	Lines int    `json:"lines"`
	Path  string `json:"path"`
	Tag   string `json:"tag"`
}

func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, err
	}
	switch ev.Mode {
	case "echo", "":
		return raw, nil
	case "boom":
		return nil, &BoomError{}
	case "sleep":
		time.Sleep(time.Duration(ev.MS) * time.Millisecond)
		return map[string]int{"slept": ev.MS, "pid": os.Getpid()}, nil
	case "exit":
		fmt.Println("exiting with", ev.Code)
		os.Exit(ev.Code)
	case "panic":
		panic("kaboom")
	case "env":
		env := map[string]string{}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		deadline, _ := ctx.Deadline()
		env["ctx-deadline-in-ms"] = fmt.Sprint(time.Until(deadline).Milliseconds())
		return env, nil
	case "log":
		for i := 0; i < ev.Lines; i++ {
			fmt.Printf("stdout line %d of pid %d %s\n", i, os.Getpid(), strings.Repeat("x", 200))
			log.Printf("stderr line %d of pid %d", i, os.Getpid())
		}
		return "logged", nil
	case "append":
		// A side effect the test can count, like a DynamoDB write: one line per
		// handler run, then an optional sleep to overlap concurrent invocations.
		f, err := os.OpenFile(ev.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		_, err = f.WriteString(ev.Tag + "\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		time.Sleep(time.Duration(ev.MS) * time.Millisecond)
		return map[string]string{"appended": ev.Tag}, nil
	case "partial":
		fmt.Print("partial line without newline")
		return "printed", nil
	case "spawn":
		// A grandchild in the function's process group: Close must end it too.
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		return map[string]int{"pid": os.Getpid(), "child": cmd.Process.Pid}, nil
	}
	return nil, fmt.Errorf("unknown mode %q", ev.Mode)
}

func main() {
	lambda.Start(handle)
}
