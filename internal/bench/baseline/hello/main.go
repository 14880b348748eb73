// Command hello is the floor of the cold-start benchmark: an aws-lambda-go function
// that links nothing else, so its init time is what any Go Lambda pays for the Go
// runtime and the Runtime API client. It is never deployed.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context) (string, error) { return "hello", nil })
}
