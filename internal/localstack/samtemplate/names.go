package samtemplate

import (
	"fmt"
	"strings"
)

// Resolver gives resources their local physical names: what Ref and Fn::GetAtt
// evaluate to. CloudFormation would return generated names; locally they must be
// predictable so that the emulators (moto, the local Lambda and Step Functions
// services) and the functions agree on them. Wrap DefaultResolver to change a few
// types and delegate the rest.
type Resolver interface {
	Ref(res ResourceRef) (any, error)
	GetAtt(res ResourceRef, attr string) (any, error)
}

// ResourceRef is the resource a Resolver is asked about. Its properties are resolved
// on demand (a name property may itself use !Sub), so a Resolver reads only what it needs.
type ResourceRef struct {
	LogicalID string
	Type      string
	Env       Env

	r   *resolver
	raw *rawResource
}

// Property resolves a top-level property of the resource; ok is false when unset.
func (rr ResourceRef) Property(name string) (v any, ok bool, err error) {
	if rr.r == nil || rr.raw == nil {
		return nil, false, nil
	}
	return rr.r.property(rr.raw, name)
}

// StringProperty resolves a top-level property that must be a string.
func (rr ResourceRef) StringProperty(name string) (string, bool, error) {
	v, ok, err := rr.Property(name)
	if err != nil || !ok {
		return "", false, err
	}
	s, isScalar := scalarString(v)
	if !isScalar {
		return "", false, fmt.Errorf("%s.%s is %s, not a string", rr.LogicalID, name, describe(v))
	}
	return s, true, nil
}

// nameOr returns the string property prop, or fallback when it is unset.
func (rr ResourceRef) nameOr(prop, fallback string) (string, error) {
	s, ok, err := rr.StringProperty(prop)
	if err != nil {
		return "", err
	}
	if !ok || s == "" {
		return fallback, nil
	}
	return s, nil
}

// DefaultResolver names resources after their logical IDs, or after their explicit
// name property (TableName, BucketName, ...) where CloudFormation's Ref returns that
// name. Functions are always named by logical ID because that is the name the local
// Lambda service serves them under.
type DefaultResolver struct{}

var _ Resolver = DefaultResolver{}

// streamLabel is the fixed label of local DynamoDB stream ARNs.
const streamLabel = "1970-01-01T00:00:00.000"

// Ref implements Resolver.
func (DefaultResolver) Ref(res ResourceRef) (any, error) {
	e, id := res.Env, res.LogicalID
	switch res.Type {
	case "AWS::Serverless::Function", "AWS::Lambda::Function":
		return id, nil
	case "AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine":
		return e.ARN("states", "stateMachine:"+id), nil
	case "AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable", "AWS::Serverless::SimpleTable":
		return res.nameOr("TableName", id)
	case "AWS::S3::Bucket":
		return res.nameOr("BucketName", strings.ToLower(id))
	case "AWS::Events::EventBus", "AWS::Events::Rule", "AWS::Scheduler::ScheduleGroup",
		"AWS::Scheduler::Schedule", "AWS::SSM::Parameter":
		return res.nameOr("Name", id)
	case "AWS::Logs::LogGroup":
		return res.nameOr("LogGroupName", id)
	case "AWS::SecretsManager::Secret":
		name, err := res.nameOr("Name", id)
		return e.ARN("secretsmanager", "secret:"+name), err
	case "AWS::SQS::Queue":
		name, err := res.nameOr("QueueName", id)
		return "https://sqs." + e.Region + "." + e.URLSuffix + "/" + e.AccountID + "/" + name, err
	case "AWS::SNS::Topic":
		name, err := res.nameOr("TopicName", id)
		return e.ARN("sns", name), err
	case "AWS::IAM::Role":
		return res.nameOr("RoleName", id)
	case "AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion":
		return e.ARN("lambda", "layer:"+id+":1"), nil
	}
	return id, nil
}

// GetAtt implements Resolver.
func (d DefaultResolver) GetAtt(res ResourceRef, attr string) (any, error) {
	e, id := res.Env, res.LogicalID
	switch res.Type {
	case "AWS::Serverless::Function", "AWS::Lambda::Function":
		if attr == "Arn" {
			return e.ARN("lambda", "function:"+id), nil
		}
	case "AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine":
		switch attr {
		case "Arn":
			return e.ARN("states", "stateMachine:"+id), nil
		case "Name":
			return id, nil
		}
	case "AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable", "AWS::Serverless::SimpleTable":
		name, err := res.nameOr("TableName", id)
		if err != nil {
			return nil, err
		}
		switch attr {
		case "Arn":
			return e.ARN("dynamodb", "table/"+name), nil
		case "StreamArn":
			return e.ARN("dynamodb", "table/"+name+"/stream/"+streamLabel), nil
		}
	case "AWS::S3::Bucket":
		name, err := res.nameOr("BucketName", strings.ToLower(id))
		if err != nil {
			return nil, err
		}
		switch attr {
		case "Arn":
			return "arn:" + e.Partition + ":s3:::" + name, nil
		case "DomainName":
			return name + ".s3." + e.URLSuffix, nil
		case "RegionalDomainName":
			return name + ".s3." + e.Region + "." + e.URLSuffix, nil
		}
	case "AWS::Events::EventBus", "AWS::Events::Rule":
		name, err := res.nameOr("Name", id)
		if err != nil {
			return nil, err
		}
		kind := "event-bus/"
		if res.Type == "AWS::Events::Rule" {
			kind = "rule/"
		}
		switch attr {
		case "Arn":
			return e.ARN("events", kind+name), nil
		case "Name":
			return name, nil
		}
	case "AWS::Scheduler::ScheduleGroup", "AWS::Scheduler::Schedule":
		name, err := res.nameOr("Name", id)
		if err != nil {
			return nil, err
		}
		if attr == "Arn" {
			if res.Type == "AWS::Scheduler::Schedule" {
				return e.ARN("scheduler", "schedule/default/"+name), nil
			}
			return e.ARN("scheduler", "schedule-group/"+name), nil
		}
	case "AWS::Logs::LogGroup":
		name, err := res.nameOr("LogGroupName", id)
		if err != nil {
			return nil, err
		}
		if attr == "Arn" {
			return e.ARN("logs", "log-group:"+name+":*"), nil
		}
	case "AWS::SecretsManager::Secret":
		if attr == "Id" || attr == "Arn" {
			return d.Ref(res)
		}
	case "AWS::SQS::Queue":
		name, err := res.nameOr("QueueName", id)
		if err != nil {
			return nil, err
		}
		switch attr {
		case "Arn":
			return e.ARN("sqs", name), nil
		case "QueueName":
			return name, nil
		case "QueueUrl":
			return d.Ref(res)
		}
	case "AWS::SNS::Topic":
		switch attr {
		case "TopicArn":
			return d.Ref(res)
		case "TopicName":
			return res.nameOr("TopicName", id)
		}
	case "AWS::IAM::Role":
		name, err := res.nameOr("RoleName", id)
		if err != nil {
			return nil, err
		}
		switch attr {
		case "Arn":
			return "arn:" + e.Partition + ":iam::" + e.AccountID + ":role/" + name, nil
		case "RoleId":
			return "AROA" + strings.ToUpper(id), nil
		}
	case "AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Api":
		switch attr {
		case "ApiEndpoint":
			return "https://" + id + ".execute-api." + e.Region + "." + e.URLSuffix, nil
		case "ApiId":
			return id, nil
		}
	case "AWS::SSM::Parameter":
		if attr == "Value" {
			v, _, err := res.Property("Value")
			return v, err
		}
	case "AWS::KMS::Key":
		switch attr {
		case "Arn":
			return e.ARN("kms", "key/"+id), nil
		case "KeyId":
			return id, nil
		}
	}
	return genericAtt(res, attr), nil
}

// genericAtt answers for types without specific knowledge: an ARN of the service
// for *Arn attributes, the logical ID for names and IDs, else "<LogicalID>.<Attr>"
// (recognisable when it shows up somewhere unexpected).
func genericAtt(res ResourceRef, attr string) string {
	switch {
	case strings.HasSuffix(attr, "Arn"):
		svc := "unknown"
		if parts := strings.Split(res.Type, "::"); len(parts) == 3 {
			svc = strings.ToLower(parts[1])
		}
		return res.Env.ARN(svc, res.LogicalID)
	case attr == "Name" || attr == "Id" || strings.HasSuffix(attr, "Name") || strings.HasSuffix(attr, "Id"):
		return res.LogicalID
	}
	return res.LogicalID + "." + attr
}
