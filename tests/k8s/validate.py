"""Offline schema check of cachecar's Kubernetes manifests (run by validate.sh).

Usage: python validate.py --k8s-version V [--k8s-version V ...] FILE...

Every YAML document of every FILE is validated with kubernetes-validate in
strict mode (unknown fields are errors) against each Kubernetes version given.
On top of what the library does:
  - a document whose kind has no schema is an error, not a warning (a typo in
    kind or apiVersion must not pass silently);
  - the sidecar fragment (deploy/k8s/sidecar.yaml: a plain mapping with
    `initContainer`, `volumes`, and the `appVolumeMounts` and `appEnv` every
    app container gets) is checked by wrapping it in a Pod;
  - when both are given, the fragment must equal the "cachecar" init container
    and its volumes in every workload that carries one, and every app
    container there must have its appVolumeMounts and appEnv (example-app.yaml
    is documented as an identical copy of what `cachecar inject` adds);
  - a ConfigMap key ending in .yaml must hold a YAML mapping;
  - a few API-server rules the JSON schemas lack (they check fields and types,
    not values): initContainers[].restartPolicy is "Always", container port
    names are IANA service names unique in the pod, resource quantities parse,
    seccompProfile.type is a known value.
Prints one line per problem, naming the file, and exits 1 if there was any.
"""

import argparse
import re
import sys

import yaml
from kubernetes_validate import utils

SIDECAR_NAME = "cachecar"
FRAGMENT_KEYS = {"initContainer", "volumes", "appVolumeMounts", "appEnv"}


def load(path):
    """Returns [(index, document)] of the file's non-empty YAML documents."""
    with open(path, encoding="utf-8") as f:
        return [(i, d) for i, d in enumerate(yaml.safe_load_all(f)) if d is not None]


def wrap_fragment(frag):
    """The smallest Pod that holds the sidecar fragment as an injector would."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sidecar-fragment"},
        "spec": {
            "initContainers": [frag.get("initContainer")],
            "containers": [{"name": "app", "image": "busybox:1.36",
                            "volumeMounts": frag.get("appVolumeMounts") or [],
                            "env": frag.get("appEnv") or []}],
            "volumes": frag.get("volumes"),
        },
    }


def pod_spec(doc):
    """The pod spec of a Pod or of a workload's pod template, or None."""
    spec = doc.get("spec") or {}
    if doc.get("kind") == "Pod":
        return spec
    if doc.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return (spec.get("template") or {}).get("spec")


# k8s.io/apimachinery resource.Quantity: a signed number, optionally with a
# binary (Ki..Ei), decimal (m, k, M..E) or exponent suffix.
QUANTITY = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)"
                      r"(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")
# IsValidPortName: at most 15 of [a-z0-9-], a letter somewhere, no "--", no
# hyphen at either end.
PORT_NAME = re.compile(r"^(?!-)(?!.*--)(?=.*[a-z])[a-z0-9-]{1,15}(?<!-)$")
SECCOMP_TYPES = {"RuntimeDefault", "Localhost", "Unconfined"}


def pod_rules(spec):
    """API-server validation the schemas do not express; returns messages."""
    msgs = []
    inits = spec.get("initContainers") or []
    containers = inits + (spec.get("containers") or [])
    port_names = set()
    for c in inits:
        rp = c.get("restartPolicy")
        if rp is not None and rp != "Always":
            msgs.append("initContainer %r: restartPolicy %r (only \"Always\" is allowed)"
                        % (c.get("name"), rp))
    contexts = [("pod", spec.get("securityContext") or {})]
    for c in containers:
        cname = c.get("name")
        contexts.append(("container %r" % cname, c.get("securityContext") or {}))
        for p in c.get("ports") or []:
            n = p.get("name")
            if n is None:
                continue
            if not isinstance(n, str) or not PORT_NAME.match(n):
                msgs.append("container %r: port name %r is not an IANA service name "
                            "(<= 15 of a-z, 0-9, -)" % (cname, n))
            elif n in port_names:
                msgs.append("container %r: port name %r is used twice in the pod"
                            % (cname, n))
            port_names.add(n)
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for rname, q in (res.get(kind) or {}).items():
                if not QUANTITY.match(str(q)):
                    msgs.append("container %r: resources.%s.%s %r is not a quantity"
                                % (cname, kind, rname, q))
    for what, sc in contexts:
        t = (sc.get("seccompProfile") or {}).get("type")
        if t is not None and t not in SECCOMP_TYPES:
            msgs.append("%s: seccompProfile.type %r is not one of %s"
                        % (what, t, sorted(SECCOMP_TYPES)))
    return msgs


def describe(doc):
    name = (doc.get("metadata") or {}).get("name", "?")
    return "%s/%s" % (doc.get("kind", "?"), name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k8s-version", action="append", required=True)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()

    errors = []
    checked = 0
    fragments = []  # (file, fragment)
    workloads = []  # (file, doc)

    for path in args.files:
        try:
            docs = load(path)
        except (OSError, yaml.YAMLError) as e:
            errors.append("%s: cannot read YAML: %s" % (path, e))
            continue
        if not docs:
            errors.append("%s: no YAML document" % path)
        for idx, doc in docs:
            where = "%s (document %d)" % (path, idx + 1)
            if not isinstance(doc, dict):
                errors.append("%s: not a mapping" % where)
                continue
            if "apiVersion" not in doc and "kind" not in doc:
                if not {"initContainer", "volumes"} <= set(doc) <= FRAGMENT_KEYS:
                    errors.append("%s: no apiVersion/kind, and not a sidecar fragment "
                                  "(initContainer and volumes, and optionally "
                                  "appVolumeMounts and appEnv)" % where)
                    continue
                fragments.append((path, doc))
                obj, label = wrap_fragment(doc), "sidecar fragment"
            else:
                obj, label = doc, describe(doc)
            for version in args.k8s_version:
                try:
                    got = utils.validate(obj, version, strict=True)
                    checked += 1
                except utils.ValidationError as e:
                    field = ".".join(str(p) for p in e.path) or "(top level)"
                    errors.append("%s: %s: Kubernetes %s strict: %s: %s"
                                  % (where, label, e.version, field, e.message))
                    continue
                except utils.SchemaNotFoundError as e:
                    errors.append("%s: %s: %s" % (where, label, e.message))
                    continue
                except utils.VersionNotSupportedError as e:
                    errors.append("kubernetes-validate: %s" % e.message)
                    continue
                except Exception as e:  # malformed documents (e.g. no kind)
                    errors.append("%s: %s: cannot validate: %r" % (where, label, e))
                    continue
                if utils.major_minor(got) != utils.major_minor(version):
                    errors.append("%s: validated against %s, not the pinned %s"
                                  % (where, got, version))
            if doc.get("kind") == "ConfigMap":
                for key, text in (doc.get("data") or {}).items():
                    if key.endswith((".yaml", ".yml")):
                        try:
                            ok = isinstance(yaml.safe_load(text), dict)
                        except yaml.YAMLError:
                            ok = False
                        if not ok:
                            errors.append("%s: %s: data.%s is not a YAML mapping"
                                          % (where, label, key))
            spec = pod_spec(obj)
            if spec is not None:
                for m in pod_rules(spec):
                    errors.append("%s: %s: %s" % (where, label, m))
                if obj is doc:
                    workloads.append((where, doc))

    # Drift check: the hand-written copy must be exactly the injected sidecar.
    for fpath, frag in fragments:
        for where, doc in workloads:
            spec = pod_spec(doc)
            inits = [c for c in spec.get("initContainers") or []
                     if c.get("name") == SIDECAR_NAME]
            if not inits:
                continue
            if inits[0] != frag["initContainer"]:
                errors.append("%s: %s: init container %r differs from %s's initContainer"
                              % (where, describe(doc), SIDECAR_NAME, fpath))
            vols = {v.get("name"): v for v in spec.get("volumes") or []}
            for v in frag["volumes"] or []:
                if vols.get(v.get("name")) != v:
                    errors.append("%s: %s: volume %r differs from (or is missing from) %s"
                                  % (where, describe(doc), v.get("name"), fpath))
            for c in spec.get("containers") or []:
                for key, field in (("appVolumeMounts", "volumeMounts"), ("appEnv", "env")):
                    have = c.get(field) or []
                    for item in frag.get(key) or []:
                        if item not in have:
                            errors.append("%s: %s: container %r lacks %s %r of %s"
                                          % (where, describe(doc), c.get("name"), field,
                                             item.get("name"), fpath))

    for e in errors:
        print("ERROR " + e)
    print("%d document validations passed, %d errors (Kubernetes %s, strict)"
          % (checked, len(errors), ", ".join(args.k8s_version)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
