"""Reads what `helm template` rendered, for tests/helm/helm_chart_test.sh.

Usage: rendered.py COMMAND ARGS... (run with the k8s-validate venv's python,
which has PyYAML). Commands:
  extract RENDER DIR        writes DIR/sidecar.yaml (the injector's sidecar
                            template), DIR/tls.crt, DIR/tls.key (the TLS
                            Secret, if rendered), DIR/ca.crt (the decoded
                            caBundle), DIR/cachecar.yaml (the first app
                            ConfigMap's config, if any), DIR/deployment.json
  webhook-args DIR LISTEN   the injector container's args, one a line, with
                            --webhook-listen=LISTEN and its mounts mapped to DIR
  names RENDER              "Kind/name ..." of every object, sorted
  namespaces RENDER K/N     the namespaces of the objects K/N, sorted
  injector RENDER FIELD     the injector container's image or args
  webhook-config RENDER     failurePolicy, timeoutSeconds, service, objectSelector
  sidecar-of POD FIELD      the injected sidecar's image, args, probes (ports),
                            resources (JSON) or volumes (ConfigMap and Secret)
  same-sidecar A B          exit 1, naming the differences, unless A == B
  same-injector RENDER DIR  exit 1 unless the rendered injector matches the
                            manifests in DIR where they must agree
  split-crds RENDER CORE CRDS   cert-manager.io objects to CRDS, the rest to CORE
  cert-manager RENDER       exit 1 unless the cert-manager objects fit together
"""

import base64
import json
import os
import sys

import yaml


def docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def key(d):
    return "%s/%s" % (d["kind"], d["metadata"]["name"])


def one(path, kind):
    found = [d for d in docs(path) if d["kind"] == kind]
    if len(found) != 1:
        raise SystemExit("%s: %d %s objects, wanted 1" % (path, len(found), kind))
    return found[0]


def webhook_container(deployment):
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "webhook")


def diff(a, b, path="", out=None):
    out = [] if out is None else out
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a:
                out.append("%s.%s: only in the second" % (path, k))
            elif k not in b:
                out.append("%s.%s: only in the first" % (path, k))
            else:
                diff(a[k], b[k], "%s.%s" % (path, k), out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, "%s[%d]" % (path, i), out)
    elif a != b:
        out.append("%s: %r != %r" % (path or "(top)", a, b))
    return out


def extract(render, d):
    os.makedirs(d, exist_ok=True)
    objs = docs(render)
    for o in objs:
        if o["kind"] == "ConfigMap" and "sidecar.yaml" in (o.get("data") or {}):
            open(os.path.join(d, "sidecar.yaml"), "w").write(o["data"]["sidecar.yaml"])
        elif o["kind"] == "ConfigMap" and "cachecar.yaml" in (o.get("data") or {}):
            p = os.path.join(d, "cachecar.yaml")
            if not os.path.exists(p):
                open(p, "w").write(o["data"]["cachecar.yaml"])
        elif o["kind"] == "Secret" and o.get("type") == "kubernetes.io/tls":
            for k in ("tls.crt", "tls.key"):
                open(os.path.join(d, k), "wb").write(base64.b64decode(o["data"][k]))
        elif o["kind"] == "MutatingWebhookConfiguration":
            ca = o["webhooks"][0]["clientConfig"].get("caBundle")
            if ca:
                open(os.path.join(d, "ca.crt"), "wb").write(base64.b64decode(ca))
        elif o["kind"] == "Deployment":
            json.dump(o, open(os.path.join(d, "deployment.json"), "w"))
    if not os.path.exists(os.path.join(d, "sidecar.yaml")):
        raise SystemExit("%s: no ConfigMap with sidecar.yaml" % render)


def webhook_args(d, listen):
    dep = json.load(open(os.path.join(d, "deployment.json")))
    c = webhook_container(dep)
    mounts = [m["mountPath"] for m in c.get("volumeMounts") or []]
    for a in c["args"]:
        if a.startswith("--webhook-listen="):
            a = "--webhook-listen=" + listen
        for m in mounts:
            a = a.replace(m + "/", d + "/")
        print(a)


def sidecar_of(pod, field):
    spec = json.load(open(pod))["spec"]
    c = next(c for c in spec["initContainers"] if c["name"] == "cachecar")
    if field == "image":
        print(c["image"])
    elif field == "args":
        print(" ".join(c["args"]))
    elif field == "probes":
        print(" ".join(str(c[p]["grpc"]["port"]) for p in ("startupProbe", "readinessProbe", "livenessProbe")))
    elif field == "resources":
        print(json.dumps(c["resources"], sort_keys=True))
    elif field == "volumes":
        vols = {v["name"]: v for v in spec["volumes"]}
        print(vols["cachecar-config"]["configMap"]["name"], vols["cachecar-db"]["secret"]["secretName"])


def same_injector(render, manifests):
    want = {}
    for f in sorted(os.listdir(manifests)):
        if f.endswith(".yaml"):
            for o in docs(os.path.join(manifests, f)):
                want[o["kind"]] = o
    got = {o["kind"]: o for o in docs(render)}
    problems = []

    def same(what, a, b):
        problems.extend("%s%s" % (what, p) for p in diff(a, b))

    w_hook, g_hook = dict(want["MutatingWebhookConfiguration"]["webhooks"][0]), dict(
        got["MutatingWebhookConfiguration"]["webhooks"][0])
    for h in (w_hook, g_hook):
        h["clientConfig"] = {k: v for k, v in h["clientConfig"].items() if k != "caBundle"}
    same("webhook", g_hook, w_hook)
    wp, gp = want["Deployment"]["spec"]["template"]["spec"], got["Deployment"]["spec"]["template"]["spec"]
    for k in ("securityContext", "automountServiceAccountToken", "enableServiceLinks",
              "terminationGracePeriodSeconds"):
        same("pod." + k, gp.get(k), wp.get(k))
    wc, gc = webhook_container(want["Deployment"]), webhook_container(got["Deployment"])
    for k in ("readinessProbe", "livenessProbe", "resources", "securityContext", "ports", "image"):
        same("webhook container." + k, gc.get(k), wc.get(k))
    same("replicas", got["Deployment"]["spec"]["replicas"], want["Deployment"]["spec"]["replicas"])
    same("service.ports", got["Service"]["spec"]["ports"], want["Service"]["spec"]["ports"])
    same("pdb.minAvailable", got["PodDisruptionBudget"]["spec"]["minAvailable"],
         want["PodDisruptionBudget"]["spec"]["minAvailable"])
    if problems:
        raise SystemExit("\n".join(problems))


def cert_manager(render):
    objs = docs(render)
    by = {key(o): o for o in objs}
    problems = []
    certs = [o for o in objs if o["kind"] == "Certificate"]
    issuers = [o for o in objs if o["kind"] == "Issuer"]
    if len(certs) != 1 or len(issuers) != 1:
        raise SystemExit("wanted one Certificate and one Issuer, got %s" % sorted(by))
    cert, issuer = certs[0]["spec"], issuers[0]
    svc = one(render, "Service")["metadata"]["name"]
    ns = one(render, "MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["service"]["namespace"]
    if "%s.%s.svc" % (svc, ns) not in cert.get("dnsNames", []):
        problems.append("dnsNames %r lack %s.%s.svc" % (cert.get("dnsNames"), svc, ns))
    vols = one(render, "Deployment")["spec"]["template"]["spec"]["volumes"]
    tls = next(v for v in vols if v["name"] == "tls")["secret"]["secretName"]
    if cert["secretName"] != tls:
        problems.append("Certificate writes %s, the injector mounts %s" % (cert["secretName"], tls))
    if cert["issuerRef"] != {"name": issuer["metadata"]["name"], "kind": "Issuer"}:
        problems.append("issuerRef %r is not the rendered Issuer" % cert["issuerRef"])
    if "selfSigned" not in issuer["spec"]:
        problems.append("the Issuer is not selfSigned")
    mwc = one(render, "MutatingWebhookConfiguration")
    want = "%s/%s" % (ns, certs[0]["metadata"]["name"])
    got = (mwc["metadata"].get("annotations") or {}).get("cert-manager.io/inject-ca-from")
    if got != want:
        problems.append("inject-ca-from is %r, not %r" % (got, want))
    if "caBundle" in mwc["webhooks"][0]["clientConfig"]:
        problems.append("caBundle is set (cert-manager's CA injector owns it)")
    if any(o["kind"] == "Secret" for o in objs):
        problems.append("a Secret is rendered (cert-manager writes it)")
    if problems:
        raise SystemExit("\n".join(problems))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "extract":
        extract(*args)
    elif cmd == "webhook-args":
        webhook_args(*args)
    elif cmd == "names":
        print(" ".join(sorted(key(d) for d in docs(args[0]))))
    elif cmd == "namespaces":
        print(" ".join(sorted(d["metadata"].get("namespace", "") for d in docs(args[0]) if key(d) == args[1])))
    elif cmd == "injector":
        c = webhook_container(one(args[0], "Deployment"))
        print(c["image"] if args[1] == "image" else " ".join(c["args"]))
    elif cmd == "webhook-config":
        h = one(args[0], "MutatingWebhookConfiguration")["webhooks"][0]
        s = h["clientConfig"]["service"]
        print("failurePolicy=%s timeoutSeconds=%s service=%s/%s objectSelector=%s" % (
            h["failurePolicy"], h["timeoutSeconds"], s["namespace"], s["name"], bool(h.get("objectSelector"))))
    elif cmd == "sidecar-of":
        sidecar_of(*args)
    elif cmd == "same-sidecar":
        problems = diff(docs(args[0])[0], docs(args[1])[0])
        if problems:
            raise SystemExit("\n".join(problems))
    elif cmd == "same-injector":
        same_injector(*args)
    elif cmd == "split-crds":
        objs = docs(args[0])
        yaml.safe_dump_all([o for o in objs if not o["apiVersion"].startswith("cert-manager.io/")],
                           open(args[1], "w"))
        yaml.safe_dump_all([o for o in objs if o["apiVersion"].startswith("cert-manager.io/")],
                           open(args[2], "w"))
    elif cmd == "cert-manager":
        cert_manager(args[0])
    else:
        raise SystemExit("unknown command " + cmd)


if __name__ == "__main__":
    main()
