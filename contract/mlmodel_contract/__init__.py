"""The contract between the operator and the model server, each value spelled once (standard library only).

- `api`: the MLModel's group, version, kind and names, and the kinds of its children.
- `spec_defaults`: every default of the MLModel spec (the CRD generator, the renderer and the server read them).
- `pod`: what a model pod looks like to the server: containers, paths, port, env names, credential keys.
- `artifacts`: formats, file names, and the one URI parser.
- `exit_codes`: every exit code of `fetch` and `serve`, with the status reason the operator reports for it.
- `redaction`: the credential rule both sides apply to what they write.

The operator and the server depend on this package and never on each other (tests/contract checks it).

docs/pod-contract.md is generated from these modules (hack/pod_contract_doc.py).
"""
