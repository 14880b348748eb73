// Command raw-runtime speaks the Lambda Runtime API directly (no aws-lambda-go), to
// test the API itself: MODE=serve answers every event with the headers it received,
// MODE=init-error reports an init error, MODE=exit dies during init, MODE=hang never
// finishes init.
package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	api := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/"
	switch os.Getenv("MODE") {
	case "init-error":
		body := `{"errorMessage":"STRIPE_KEY is not set","errorType":"Runtime.ConfigError"}`
		resp, err := http.Post(api+"init/error", "application/json", bytes.NewBufferString(body))
		if err == nil {
			resp.Body.Close()
		}
		os.Exit(1)
	case "exit":
		fmt.Fprintln(os.Stderr, "fatal: missing configuration")
		os.Exit(1)
	case "hang":
		time.Sleep(time.Hour)
	}
	for {
		resp, err := http.Get(api + "invocation/next")
		if err != nil {
			fmt.Fprintln(os.Stderr, "next:", err)
			os.Exit(1)
		}
		payload, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		out := fmt.Sprintf(`{"requestId":%q,"deadlineMs":%q,"arn":%q,"traceId":%q,"contentType":%q,"payload":%s}`,
			id, resp.Header.Get("Lambda-Runtime-Deadline-Ms"), resp.Header.Get("Lambda-Runtime-Invoked-Function-Arn"),
			resp.Header.Get("Lambda-Runtime-Trace-Id"), resp.Header.Get("Content-Type"), payload)
		target := api + "invocation/" + id + "/response"
		if bytes.Contains(payload, []byte(`"fail"`)) {
			// A non-JSON error body with the type in a header.
			req, _ := http.NewRequest(http.MethodPost, api+"invocation/"+id+"/error", bytes.NewBufferString("plain failure"))
			req.Header.Set("Lambda-Runtime-Function-Error-Type", "Custom.PlainError")
			if r, err := http.DefaultClient.Do(req); err == nil {
				r.Body.Close()
			}
			continue
		}
		r, err := http.Post(target, "application/json", bytes.NewBufferString(out))
		if err != nil {
			fmt.Fprintln(os.Stderr, "response:", err)
			os.Exit(1)
		}
		r.Body.Close()
		// A second post for the same id must be refused.
		r, err = http.Post(target, "application/json", bytes.NewBufferString(out))
		if err == nil {
			if r.StatusCode != http.StatusBadRequest {
				fmt.Fprintln(os.Stderr, "duplicate response accepted:", r.Status)
				os.Exit(3)
			}
			r.Body.Close()
		}
	}
}
