"""An offline RBAC model: roles (aggregation resolved), bindings, subjects, and what a rule allows.

The semantics follow the upstream RBAC authorizer (k8s.io/kubernetes plugin/pkg/auth/authorizer/rbac):

- a rule matches a request when its verbs, apiGroups and resources match (`*` matches anything; a resource
  `*/<sub>` matches that subresource of any resource) and, when resourceNames is set, the object's name is
  listed (so a rule with resourceNames never authorises an unnamed request: `create` or `deletecollection`
  of an object, or a list/watch without a metadata.name field selector);
- nonResourceURLs (`/healthz`, `/api/*` prefix form) only take effect through a ClusterRoleBinding;
- a RoleBinding grants its role, even a ClusterRole, only inside the binding's namespace, and therefore never
  grants anything on cluster-scoped resources (nodes, clusterroles, users, ...);
- a ServiceAccount subject without a namespace in a RoleBinding means the binding's namespace;
- an aggregated ClusterRole's rules are the union of the rules of every other ClusterRole matching any of its
  clusterRoleSelectors (transitively, as the aggregation controller converges). The controller replaces the
  role's own rules with that union, so rules written into an aggregated role count for nothing (in a consistent
  dump they equal the union anyway). Only in an aggregation cycle, where the controller's result depends on the
  order it syncs the roles in, the own rules of the roles on the cycle are kept: the union covers every outcome;
- a binding whose roleRef or subject names the wrong apiGroup (User/Group: rbac.authorization.k8s.io,
  ServiceAccount: "") is rejected by the API server: such a roleRef or subject is reported and ignored.

The model is built once per inventory (`rbac_model`) and is reused by the rbac checks, hardening and who-can.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cache

from nis2kube.bundled import load_yaml
from nis2kube.inventory import Inventory
from nis2kube.inventory.selectors import MAPPING_TYPES, InvalidSelector, labels_of, parse_selector

RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_KINDS = ("ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding")
CLUSTER_ADMIN = "cluster-admin"
# Groups every (authenticated / anonymous / service-account) identity is in: bindings to them reach everyone.
EVERYONE_GROUPS = frozenset({"system:authenticated", "system:unauthenticated", "system:serviceaccounts"})
ANONYMOUS_USER = "system:anonymous"
SA_USER_PREFIX = "system:serviceaccount:"
SA_GROUP_PREFIX = "system:serviceaccounts:"
BOOTSTRAP_LABEL = ("kubernetes.io/bootstrapping", "rbac-defaults")


_NONE: frozenset[str] = frozenset()
# Requests on a whole resource (not a subresource) that never carry an object name.
UNNAMED_VERBS = frozenset({"create", "deletecollection"})


def _strings(value: object) -> frozenset[str]:
    if not isinstance(value, list) or not value:
        return _NONE
    for v in value:
        if type(v) is not str:
            break
    else:  # the usual list of strings, read without a test per item
        return frozenset(value)
    return frozenset(str(v) for v in value if isinstance(v, str | int | float) and not isinstance(v, bool))


@dataclass(frozen=True, slots=True)
class Rule:
    """One PolicyRule; `source` is the role it was written in (differs from the holder after aggregation)."""

    verbs: frozenset[str]
    api_groups: frozenset[str]
    resources: frozenset[str]
    resource_names: frozenset[str]
    non_resource_urls: frozenset[str]
    source: str

    @classmethod
    def parse(cls, raw: object, source: str) -> Rule | None:
        if not isinstance(raw, MAPPING_TYPES):
            return None
        return cls(
            verbs=_strings(raw.get("verbs")),
            api_groups=_strings(raw.get("apiGroups")),
            resources=_strings(raw.get("resources")),
            resource_names=_strings(raw.get("resourceNames")),
            non_resource_urls=_strings(raw.get("nonResourceURLs")),
            source=source,
        )

    def verb_matches(self, verb: str) -> bool:
        return "*" in self.verbs or verb in self.verbs

    def resource_matches(self, verb: str, group: str, resource: str) -> bool:
        """Verb, apiGroup and resource ("pods" or "pods/exec") match; resourceNames is NOT considered here."""
        return self.verb_matches(verb) and self.covers(group, resource)

    def covers(self, group: str, resource: str) -> bool:
        """apiGroup and resource match, whatever the verb."""
        if not ("*" in self.api_groups or group in self.api_groups):
            return False
        subresource = resource.split("/", 1)[1] if "/" in resource else ""
        for granted in self.resources:
            if granted in ("*", resource):
                return True
            if subresource and granted == f"*/{subresource}":
                return True
        return False

    def may_grant(self, verb: str, group: str, resource: str) -> bool:
        """Whether some request `verb` on group/resource passes this rule. resourceNames narrow it to those
        objects, except that create and deletecollection of a whole resource carry no name (upstream: they
        cannot be restricted by resourceName), so a named rule never grants them. A list/watch is named by a
        metadata.name field selector, so a named rule grants it on those objects."""
        if not self.resource_matches(verb, group, resource):
            return False
        return not (self.resource_names and verb in UNNAMED_VERBS and "/" not in resource)

    def allows(self, verb: str, group: str, resource: str, name: str = "") -> bool:
        """The exact authorizer decision for a request on one resource (name "" = unnamed request)."""
        if not self.resource_matches(verb, group, resource):
            return False
        return not self.resource_names or name in self.resource_names

    def allows_url(self, verb: str, path: str) -> bool:
        if not self.verb_matches(verb):
            return False
        for url in self.non_resource_urls:
            # the authorizer trims every trailing `*` (strings.TrimRight), so "/api**" is the prefix "/api"
            if url == "*" or url == path or (url.endswith("*") and path.startswith(url.rstrip("*"))):
                return True
        return False

    @property
    def wildcards(self) -> tuple[str, ...]:
        """The fields of this rule that hold `*`."""
        fields = (("verbs", self.verbs), ("apiGroups", self.api_groups), ("resources", self.resources),
                  ("nonResourceURLs", self.non_resource_urls))  # fmt: skip
        return tuple(name for name, values in fields if "*" in values)

    def describe(self) -> str:
        def fmt(values: frozenset[str]) -> str:
            return "[" + ",".join(f'"{v}"' if v == "" else v for v in sorted(values)) + "]"

        parts = [f"verbs={fmt(self.verbs)}"]
        if self.non_resource_urls:
            parts.append(f"nonResourceURLs={fmt(self.non_resource_urls)}")
        if self.api_groups or self.resources:
            parts += [f"apiGroups={fmt(self.api_groups)}", f"resources={fmt(self.resources)}"]
        if self.resource_names:
            parts.append(f"resourceNames={fmt(self.resource_names)}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Role:
    kind: str  # Role or ClusterRole
    namespace: str | None
    name: str
    obj: dict | None  # None for a default ClusterRole the input does not contain (see default_cluster_roles)
    rules: tuple[Rule, ...]
    aggregated_from: tuple[str, ...] = ()  # names of the ClusterRoles whose rules were aggregated in
    resources: frozenset[str] = field(init=False, repr=False, compare=False)  # named by any of its rules

    def __post_init__(self) -> None:
        object.__setattr__(self, "resources", frozenset().union(*(r.resources for r in self.rules)))

    def may_cover(self, resource: str) -> bool:
        """False when no rule can cover `resource`: one set test before Rule.covers, rule by rule (several
        checks ask a dozen capabilities of every role)."""
        if "*" in self.resources or resource in self.resources:
            return True
        subresource = resource.partition("/")[2]
        return bool(subresource) and f"*/{subresource}" in self.resources

    @property
    def display(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    @property
    def builtin(self) -> bool:
        """A default role the API server bootstraps (labelled so), or a `system:` ClusterRole."""
        if self.obj is None:
            return True
        labels = labels_of(self.obj)
        return labels.get(BOOTSTRAP_LABEL[0]) == BOOTSTRAP_LABEL[1] or (
            self.kind == "ClusterRole" and self.name.startswith("system:")
        )


@dataclass(frozen=True, slots=True)
class Subject:
    kind: str  # User, Group, ServiceAccount
    name: str
    namespace: str | None = None  # ServiceAccounts only

    @property
    def display(self) -> str:
        if self.kind == "ServiceAccount":
            return f"ServiceAccount {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}"

    @property
    def service_account(self) -> tuple[str, str] | None:
        """(namespace, name) when this subject is one ServiceAccount (also in its `system:serviceaccount:` form)."""
        if self.kind == "ServiceAccount" and self.namespace:
            return self.namespace, self.name
        if self.kind == "User" and self.name.startswith(SA_USER_PREFIX):
            ns, _, name = self.name[len(SA_USER_PREFIX) :].partition(":")
            if ns and name:
                return ns, name
        return None

    @property
    def is_everyone(self) -> bool:
        """Reaches every identity of a kind: all authenticated users, anonymous, all service accounts."""
        if self.kind == "Group":
            return self.name in EVERYONE_GROUPS or self.name.startswith(SA_GROUP_PREFIX)
        return self.kind == "User" and self.name == ANONYMOUS_USER

    def is_system(self, system_namespaces: Collection[str]) -> bool:
        """A control-plane identity: `system:` users/groups (not the everyone groups), SAs of system namespaces."""
        if self.is_everyone:
            return False
        sa = self.service_account
        if sa is not None:
            return sa[0] in system_namespaces
        return self.name.startswith("system:")


@dataclass(frozen=True, slots=True)
class Grant:
    """One binding: its role (None when the input lacks it) given to its subjects within `scope`."""

    binding: dict
    role_kind: str
    role_name: str
    role: Role | None
    subjects: tuple[Subject, ...]
    scope: str | None  # the RoleBinding's namespace; None = cluster-wide (ClusterRoleBinding)

    @property
    def binding_display(self) -> str:
        meta = self.binding.get("metadata") or {}
        ns = meta.get("namespace")
        kind = self.binding.get("kind", "")
        return f"{kind}/{ns}/{meta.get('name', '')}" if ns else f"{kind}/{meta.get('name', '')}"

    @property
    def role_display(self) -> str:
        if self.role is not None:
            return self.role.display
        return (
            f"{self.role_kind}/{self.scope}/{self.role_name}"
            if self.role_kind == "Role"
            else (f"{self.role_kind}/{self.role_name}")
        )

    def covers(self, namespace: str | None) -> bool:
        """Does this grant reach objects in `namespace` (None = cluster-scoped objects)?"""
        if self.scope is None:
            return True
        return namespace is not None and namespace == self.scope


@cache
def default_cluster_roles() -> tuple[dict, ...]:
    """The user-facing ClusterRoles every API server bootstraps (cluster-admin, admin, edit, view and the
    system:aggregate-to-* roles feeding the last three), as objects: inputs bind them without containing them."""
    out = []
    for entry in load_yaml("nis2kube", "data/k8s_default_clusterroles.yaml"):
        labels = {**entry["labels"], BOOTSTRAP_LABEL[0]: BOOTSTRAP_LABEL[1]}
        obj = {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRole",
               "metadata": {"name": entry["name"], "labels": labels}, "rules": entry.get("rules", [])}
        if "aggregate" in entry:
            obj["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {entry["aggregate"]: "true"}}]}
        out.append(obj)
    return tuple(out)


class RbacModel:
    """Roles by (kind, namespace, name), grants, and the problems met while reading them."""

    def __init__(self) -> None:
        self.roles: dict[tuple[str, str | None, str], Role] = {}
        self.grants: list[Grant] = []
        self.problems: list[tuple[dict, str]] = []  # (object, what is wrong)
        self._by_role: dict[tuple[str, str | None, str], list[Grant]] = defaultdict(list)
        self._by_sa: dict[tuple[str, str], list[Grant]] = defaultdict(list)
        self._into: dict[str, list[Role]] = defaultdict(list)
        self._unbound: list[Role] | None = None  # built after the last grant is added

    def role(self, kind: str, namespace: str | None, name: str) -> Role | None:
        return self.roles.get((kind, namespace if kind == "Role" else None, name))

    def grants_of(self, role: Role) -> list[Grant]:
        return self._by_role.get((role.kind, role.namespace, role.name), [])

    def grants_for_service_account(self, namespace: str, name: str) -> list[Grant]:
        """Bindings naming this ServiceAccount itself (not the groups every SA is in)."""
        return self._by_sa.get((namespace, name), [])

    def unbound_roles(self) -> list[Role]:
        """Roles in the input that no binding with a subject names (every rbac check reports them)."""
        if self._unbound is None:
            self._unbound = [role for role in self.roles.values()
                             if role.obj is not None and not any(g.subjects for g in self.grants_of(role))]
        return self._unbound

    def aggregated_into(self, role: Role) -> list[Role]:
        """The aggregated ClusterRoles this role's rules flow into."""
        return self._into.get(role.name, []) if role.kind == "ClusterRole" else []

    def who_can(
        self, verb: str, group: str, resource: str, namespace: str | None = None, name: str = ""
    ) -> list[tuple[Subject, Grant]]:
        """Subjects allowed a request, as the RBAC authorizer decides it.

        `namespace` is the request's namespace; None for cluster-scoped resources or all-namespace requests,
        which only ClusterRoleBindings can allow."""
        out = []
        for grant in self.grants:
            if grant.role is None or not grant.covers(namespace):
                continue
            if any(r.allows(verb, group, resource, name) for r in grant.role.rules):
                out.extend((subject, grant) for subject in grant.subjects)
        return out

    def _add_grant(self, grant: Grant) -> None:
        self.grants.append(grant)
        if grant.role is not None:
            self._by_role[(grant.role.kind, grant.role.namespace, grant.role.name)].append(grant)
        for subject in grant.subjects:
            sa = subject.service_account
            if sa is not None:
                self._by_sa[sa].append(grant)


def rbac_model(inv: Inventory) -> RbacModel:
    """The RBAC model of an inventory, built once."""
    return inv.cached("rbac-model", lambda: build_model(inv))


def build_model(inv: Inventory) -> RbacModel:
    model = RbacModel()
    for obj in inv.objects("Role", RBAC_GROUP):
        meta = obj["metadata"]
        role = Role("Role", meta.get("namespace"), str(meta.get("name", "")), obj, _rules(obj, model))
        model.roles[("Role", role.namespace, role.name)] = role
    for role in _cluster_roles(inv, model):
        model.roles[("ClusterRole", None, role.name)] = role
        for source in role.aggregated_from:
            model._into[source].append(role)
    for obj in inv.objects("ClusterRoleBinding", RBAC_GROUP):
        grant = _grant(obj, None, model)
        if grant is not None:
            model._add_grant(grant)
    for obj in inv.objects("RoleBinding", RBAC_GROUP):
        grant = _grant(obj, obj["metadata"].get("namespace") or "default", model)
        if grant is not None:
            model._add_grant(grant)
    return model


def _display(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{ns}/{meta.get('name', '')}" if ns else f"{obj.get('kind')}/{meta.get('name', '')}"


def _rules(obj: dict, model: RbacModel) -> tuple[Rule, ...]:
    raw = obj.get("rules") or []
    if not isinstance(raw, list):
        model.problems.append((obj, "rules is not a list; the role is read as granting nothing"))
        return ()
    source = _display(obj)
    rules = tuple(r for r in (Rule.parse(item, source) for item in raw) if r is not None)
    if len(rules) != len(raw):
        model.problems.append((obj, "a rule that is not a mapping was ignored"))
    return rules


def _cluster_roles(inv: Inventory, model: RbacModel) -> list[Role]:
    """ClusterRoles with aggregation resolved to a fixpoint (aggregated roles may aggregate aggregated roles),
    the default ones the input lacks included (with obj None: they are the API server's, not the input's)."""
    objs = inv.objects("ClusterRole", RBAC_GROUP)
    present = {str(obj["metadata"].get("name", "")) for obj in objs}
    defaults = {id(obj) for obj in default_cluster_roles() if obj["metadata"]["name"] not in present}
    objs = [*objs, *(obj for obj in default_cluster_roles() if id(obj) in defaults)]
    own: dict[str, tuple[Rule, ...]] = {}
    labels: dict[str, dict[str, str]] = {}
    selectors: dict[str, list] = {}
    for obj in objs:
        name = str(obj["metadata"].get("name", ""))
        own[name] = _rules(obj, model)
        labels[name] = labels_of(obj)
        rule = obj.get("aggregationRule")
        if isinstance(rule, MAPPING_TYPES) and rule.get("clusterRoleSelectors") is not None:
            parsed = []
            raw_selectors = rule.get("clusterRoleSelectors")
            try:
                for raw in raw_selectors if isinstance(raw_selectors, list) else []:
                    # a list of structs: a null item decodes as the empty selector, which selects every role
                    parsed.append(parse_selector({} if raw is None else raw))
            except InvalidSelector as exc:  # the controller's sync fails before it writes: the rules stay as they are
                model.problems.append((obj, f"invalid clusterRoleSelector ({exc}): the aggregation controller "
                                            "cannot sync this role, its own rules are kept"))  # fmt: skip
                continue
            selectors[name] = parsed
    # Which roles feed each aggregated role (the controller skips the aggregated role itself).
    sources: dict[str, list[str]] = {
        name: sorted(other for other in own if other != name and any(s.matches(labels[other]) for s in sels))
        for name, sels in selectors.items()
    }
    # The controller replaces an aggregated role's rules: it starts from nothing, unless it is on a cycle.
    cyclic = _on_cycle(sources)
    resolved: dict[str, dict[Rule, None]] = {
        name: dict.fromkeys(own[name]) if name not in sources or name in cyclic else {} for name in own
    }
    changed = True
    rounds = 0
    while changed and rounds <= len(sources):  # each round extends chains by one hop; bounded by their count
        changed = False
        rounds += 1
        for name, feeding in sources.items():
            for other in feeding:
                for rule in list(resolved[other]):
                    if rule not in resolved[name]:
                        resolved[name][rule] = None
                        changed = True
    out = []
    for obj in objs:
        name = str(obj["metadata"].get("name", ""))
        out.append(Role("ClusterRole", None, name, None if id(obj) in defaults else obj, tuple(resolved[name]),
                        tuple(sources.get(name, ()))))
    return out


def _on_cycle(sources: dict[str, list[str]]) -> set[str]:
    """The aggregated roles that feed themselves through other aggregated roles (there are only a few)."""
    out = set()
    for start, feeding in sources.items():
        stack, seen = list(feeding), set()
        while stack:
            name = stack.pop()
            if name == start:
                out.add(start)
                break
            if name not in seen:
                seen.add(name)
                stack.extend(sources.get(name, ()))
    return out


def _grant(obj: dict, scope: str | None, model: RbacModel) -> Grant | None:
    ref = obj.get("roleRef")
    if not isinstance(ref, MAPPING_TYPES) or not ref.get("name") or ref.get("kind") not in ("Role", "ClusterRole"):
        model.problems.append((obj, "roleRef is missing or names neither a Role nor a ClusterRole"))
        return None
    kind, name = str(ref["kind"]), str(ref["name"])
    if kind == "Role" and scope is None:
        model.problems.append((obj, "a ClusterRoleBinding cannot reference a Role"))
        return None
    if ref.get("apiGroup") not in (None, "", RBAC_GROUP):  # empty is defaulted to rbac.authorization.k8s.io
        model.problems.append((obj, f"roleRef.apiGroup {ref['apiGroup']!r} is not {RBAC_GROUP}: the API server "
                                    "rejects the binding"))  # fmt: skip
        return None
    subjects = []
    raw_subjects = obj.get("subjects") or []
    for raw in raw_subjects if isinstance(raw_subjects, list) else []:
        subject = _subject(raw, scope)
        if isinstance(subject, str):
            model.problems.append((obj, f"subject {raw!r} {subject}; ignored"))
        else:
            subjects.append(subject)
    role = model.role(kind, scope, name)
    return Grant(obj, kind, name, role, tuple(subjects), scope)


# The only apiGroup each subject kind may name; an empty one is defaulted to it.
SUBJECT_GROUPS = {"ServiceAccount": "", "User": RBAC_GROUP, "Group": RBAC_GROUP}


def _subject(raw: object, scope: str | None) -> Subject | str:
    """The subject, or why the API server would not accept it."""
    if not isinstance(raw, MAPPING_TYPES) or not raw.get("name"):
        return "has no name"
    kind, name = raw.get("kind"), str(raw["name"])
    if not isinstance(kind, str) or kind not in SUBJECT_GROUPS:
        return "is not a User, Group or ServiceAccount"
    if raw.get("apiGroup") not in (None, "", SUBJECT_GROUPS[kind]):
        return f"names apiGroup {raw['apiGroup']!r}, which a {kind} subject cannot have"
    if kind == "ServiceAccount":
        namespace = raw.get("namespace") or scope  # RoleBinding: defaults to the binding's namespace
        return Subject(kind, name, str(namespace)) if namespace else "is a ServiceAccount without a namespace"
    return Subject(kind, name)
