package lambdasvc

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// lambdaClient is the AWS SDK's Lambda client pointed at s, as `aws lambda
// --endpoint-url` points the CLI at `make dev`'s Lambda service.
func lambdaClient(s *Service) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

// TestListFunctionsWithTheSDK lists the served functions through the SDK's paginator
// (MaxItems 1, so every page's NextMarker is followed) and checks the configuration
// of each as the Lambda API shapes it.
func TestListFunctionsWithTheSDK(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	c := lambdaClient(s)
	ctx := context.Background()
	var got []types.FunctionConfiguration
	pages := 0
	p := lambda.NewListFunctionsPaginator(c, &lambda.ListFunctionsInput{MaxItems: aws.Int32(1)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListFunctions: %v", err)
		}
		if len(out.Functions) > 1 {
			t.Fatalf("page of %d functions with MaxItems 1", len(out.Functions))
		}
		got = append(got, out.Functions...)
		if pages++; pages > 100 {
			t.Fatal("the paginator does not end")
		}
	}
	var names []string
	for _, f := range got {
		names = append(names, aws.ToString(f.FunctionName))
	}
	var want []string
	for _, f := range s.ordered {
		want = append(want, f.name)
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("functions %v, want %v (sorted by name)", names, want)
	}
	echo := got[slices.Index(names, "EchoFunction")]
	checkEchoConfig(t, s, echo)
}

// checkEchoConfig checks the fixture's EchoFunction as ListFunctions and GetFunction
// describe it.
func checkEchoConfig(t *testing.T, s *Service, f types.FunctionConfiguration) {
	t.Helper()
	wantARN := "arn:aws:lambda:us-east-1:123456789012:function:EchoFunction"
	if aws.ToString(f.FunctionArn) != wantARN {
		t.Errorf("FunctionArn %q, want %q", aws.ToString(f.FunctionArn), wantARN)
	}
	if f.Runtime != types.RuntimeProvidedal2023 || aws.ToString(f.Handler) != "bootstrap" {
		t.Errorf("Runtime %q Handler %q", f.Runtime, aws.ToString(f.Handler))
	}
	if aws.ToInt32(f.MemorySize) != 256 || aws.ToInt32(f.Timeout) != 5 {
		t.Errorf("MemorySize %d Timeout %d, want the template's 256 and 5", aws.ToInt32(f.MemorySize), aws.ToInt32(f.Timeout))
	}
	if aws.ToString(f.Version) != "$LATEST" || f.PackageType != types.PackageTypeZip || f.State != types.StateActive {
		t.Errorf("Version %q PackageType %q State %q", aws.ToString(f.Version), f.PackageType, f.State)
	}
	if !slices.Equal(f.Architectures, []types.Architecture{types.ArchitectureX8664}) {
		t.Errorf("Architectures %v", f.Architectures)
	}
	if f.CodeSize <= 0 || len(aws.ToString(f.CodeSha256)) != 44 {
		t.Errorf("CodeSize %d CodeSha256 %q: want the bootstrap's size and base64 SHA-256", f.CodeSize, aws.ToString(f.CodeSha256))
	}
	if aws.ToString(f.LastModified) == "" || aws.ToString(f.Role) == "" {
		t.Errorf("LastModified %q Role %q", aws.ToString(f.LastModified), aws.ToString(f.Role))
	}
	if f.Environment == nil {
		t.Fatal("no Environment")
	}
	vars := f.Environment.Variables
	if vars["FROM_GLOBALS"] != "g" || vars["BUS_ARN"] != "arn:aws:events:us-east-1:123456789012:event-bus/x" {
		t.Errorf("Environment %v: want the template's variables", vars)
	}
	// The local credentials and endpoints the service adds are not the function's
	// configuration: they are never listed.
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "EXTRA", "AWS_LAMBDA_RUNTIME_API", "PATH"} {
		if _, ok := vars[k]; ok {
			t.Errorf("Environment lists %s", k)
		}
	}
}

// TestGetFunctionWithTheSDK reads one function by name, by ARN and by qualified name,
// and an unknown one as the SDK's typed ResourceNotFoundException.
func TestGetFunctionWithTheSDK(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	c := lambdaClient(s)
	ctx := context.Background()
	for _, name := range []string{"EchoFunction", "arn:aws:lambda:us-east-1:123456789012:function:EchoFunction", "EchoFunction:$LATEST"} {
		out, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
		if err != nil {
			t.Fatalf("GetFunction %s: %v", name, err)
		}
		if out.Configuration == nil || aws.ToString(out.Configuration.FunctionName) != "EchoFunction" {
			t.Fatalf("GetFunction %s: Configuration %+v", name, out.Configuration)
		}
		checkEchoConfig(t, s, *out.Configuration)
		if out.Code == nil || aws.ToString(out.Code.RepositoryType) != "S3" || aws.ToString(out.Code.Location) == "" {
			t.Errorf("Code %+v", out.Code)
		}
	}
	cfg, err := c.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("EchoFunction")})
	if err != nil {
		t.Fatalf("GetFunctionConfiguration: %v", err)
	}
	if aws.ToString(cfg.FunctionName) != "EchoFunction" || aws.ToInt32(cfg.MemorySize) != 256 {
		t.Errorf("GetFunctionConfiguration: %s %d", aws.ToString(cfg.FunctionName), aws.ToInt32(cfg.MemorySize))
	}
	_, err = c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("NopeFunction")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("GetFunction of an unknown function: %v, want ResourceNotFoundException", err)
	}
}

// TestListFunctionsBadMarker refuses a marker it did not hand out, as Lambda does.
func TestListFunctionsBadMarker(t *testing.T) {
	t.Parallel()
	s, _ := start(t, nil)
	for _, q := range []string{"?Marker=nope", "?MaxItems=0", "?MaxItems=10001", "?MaxItems=x"} {
		resp, err := http.Get(s.URL() + "/2015-03-31/functions/" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("x-amzn-ErrorType") != "InvalidParameterValueException" {
			t.Errorf("%s: %d %q", q, resp.StatusCode, resp.Header.Get("x-amzn-ErrorType"))
		}
	}
}
