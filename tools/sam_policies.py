"""Expand the Policies of SAM resources into the IAM policies AWS gives their roles.

The local stack creates one IAM user per function and state machine in moto with the
policies its role would have in AWS. What a SAM policy template (DynamoDBCrudPolicy,
LambdaInvokePolicy, ...) or a managed policy name stands for is defined by
aws-sam-translator, so this script runs the translator's own steps, the ones `sam
deploy` runs: the policy templates plugin turns templates into statements, then the
role constructor names each inline policy and maps managed policy names to ARNs.

stdin:  {"partition", "region", "account_id",
         "resources": {logical id: {"type": "AWS::Serverless::Function", "policies": [...]}}}
        Intrinsics in the policies are already resolved (the template's Fn::If,
        Ref, Fn::Sub, ...); what the templates add is resolved here (pseudo parameters).
stdout: {logical id: {"inline": [{"name", "document"}], "managed": [arn, ...]}}
"""
import json
import re
import sys

from samtranslator.model.resource_policies import ResourcePolicies
from samtranslator.model.role_utils.role_constructor import construct_role_for_resource
from samtranslator.plugins.policies.policy_templates_plugin import PolicyTemplatesForResourcePlugin
from samtranslator.policy_template_processor.processor import PolicyTemplatesProcessor
from samtranslator.translator.arn_generator import ArnGenerator


def resolve(value, pseudo):
    """Resolve the intrinsics policy templates use: Ref and Fn::Sub of pseudo
    parameters, and Fn::Join."""
    if isinstance(value, list):
        return [resolve(v, pseudo) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"} and value["Ref"] in pseudo:
        return pseudo[value["Ref"]]
    if set(value) == {"Fn::Sub"}:
        arg = value["Fn::Sub"]
        text, names = (arg, {}) if isinstance(arg, str) else (arg[0], resolve(arg[1], pseudo))
        env = {**pseudo, **names}

        def sub(m):
            name = m.group(1)
            if name not in env or not isinstance(env[name], str):
                raise ValueError(f"cannot resolve ${{{name}}} in {text!r}")
            return env[name]

        return re.sub(r"\$\{([^}!]+)\}", sub, text)
    if set(value) == {"Fn::Join"}:
        sep, parts = value["Fn::Join"]
        return sep.join(resolve(parts, pseudo))
    return {k: resolve(v, pseudo) for k, v in value.items()}


def expand(logical_id, resource_type, policies, pseudo):
    props = {"Policies": policies}
    processor = PolicyTemplatesProcessor(PolicyTemplatesProcessor.get_default_policy_templates_json())
    PolicyTemplatesForResourcePlugin(processor).on_before_transform_resource(logical_id, resource_type, props)
    role = construct_role_for_resource(
        resource_logical_id=logical_id,
        attributes={},
        managed_policy_map=None,
        assume_role_policy_document={},
        resource_policies=ResourcePolicies(props),
    )
    inline = [{"name": p["PolicyName"], "document": resolve(p["PolicyDocument"], pseudo)} for p in role.Policies or []]
    managed = []
    for arn in role.ManagedPolicyArns or []:
        if not arn.startswith("arn:"):  # a name the bundled map does not know
            arn = f"arn:{pseudo['AWS::Partition']}:iam::aws:policy/{arn}"
        managed.append(arn)
    return {"inline": inline, "managed": managed}


def main() -> None:
    req = json.load(sys.stdin)
    # The translator takes the partition of managed policy ARNs from the region it
    # runs in; here that is the local stack's region, never the host's AWS settings.
    ArnGenerator.BOTO_SESSION_REGION_NAME = req["region"]
    pseudo = {"AWS::Partition": req["partition"], "AWS::Region": req["region"], "AWS::AccountId": req["account_id"],
              "AWS::URLSuffix": "amazonaws.com"}
    out = {}
    for logical_id, res in req["resources"].items():
        try:
            out[logical_id] = expand(logical_id, res["type"], res["policies"] or [], pseudo)
        except Exception as e:  # noqa: BLE001 - reported with the resource it belongs to
            sys.exit(f"{logical_id}: {e}")
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
