# Evaluation program of the built-in evaluator, run by `nix eval --json --expr`.
# It mirrors nix-eval-jobs' worker: functions are called with no arguments,
# the selected attribute set is always entered, nested sets only when they set
# `recurseForDerivations = true` (or when forceRecurse is on).
{ root, select, forceRecurse, request }:
let
  inherit (builtins) attrNames concatMap deepSeq filter foldl' hasContext isAttrs isFunction isList isString tryEval;

  autoCall = value: if isFunction value then value { } else value;

  # Selecting by hand gives a missing attribute a message of its own, not a position in this file.
  step = value: name:
    let set = autoCall value;
    in
    if !(isAttrs set) then throw "cannot select attribute '${name}' of a value that is not an attribute set"
    else if set ? ${name} then set.${name}
    else throw "attribute '${name}' missing";

  # Bound once, so a top-level function is called once per process, not once per attribute.
  selected = autoCall (foldl' step root select);

  valueAt = path: autoCall (foldl' step selected path);

  isDerivation = value: isAttrs value && (value.type or null) == "derivation";

  classify = path: value:
    if isDerivation value then "job"
    else if !(isAttrs value) then "skip"
    else if path == [ ] || forceRecurse || (value.recurseForDerivations or false) == true then "attrs"
    else "skip";

  # tryEval isolates `throw` and `assert` per attribute; other errors abort the
  # whole walk and the caller falls back to probing the tree node by node.
  walk = path: thunk:
    let
      value = autoCall thunk;
      kind = tryEval (classify path value);
    in
    if !kind.success then [ { inherit path; failed = true; } ]
    else if kind.value == "job" then [ { inherit path; failed = false; } ]
    else if kind.value == "attrs" then concatMap (name: walk (path ++ [ name ]) value.${name}) (attrNames value)
    else [ ];

  probe = path:
    let
      value = valueAt path;
      kind = classify path value;
    in
    { inherit kind; names = if kind == "attrs" then attrNames value else [ ]; };

  # A value as JSON can carry it, or null when it fails to evaluate: a broken `meta` field
  # must not cost the job.
  safe = value: let r = tryEval (deepSeq value value); in if r.success then r.value else null;

  # The `meta` fields a CI shows or obeys, as nix-eval-jobs' `--meta` prints them (raw JSON).
  metaOf = value:
    let found = tryEval (value.meta or { }); meta = found.value;
    in
    if !found.success || !(isAttrs meta) then { }
    else builtins.intersectAttrs { description = null; maintainers = null; license = null; timeout = null; maxSilent = null; }
      (builtins.mapAttrs (_: field: safe (if isAttrs field && field ? outPath then null else field)) meta);

  # Hydra's aggregate jobs: `_hydraAggregate = true; constituents = [ drv "attr.name" … ]`.
  # Derivations become drv paths, plain strings are names of other jobs.
  aggregateOf = value:
    if (value._hydraAggregate or false) != true then null
    else
      let list = value.constituents or (throw "aggregate job '${value.name}' has no 'constituents' attribute; list the jobs it stands for");
      in
      if !(isList list) then throw "the 'constituents' of aggregate job '${value.name}' must be a list of derivations or attribute names"
      else {
        drvs = map (c: c.drvPath) (filter isDerivation list);
        names = filter (c: isString c && !(hasContext c)) list;
      };

  instantiate = path:
    let value = valueAt path;
    in
    if isDerivation value then { drvPath = value.drvPath; name = value.name; meta = metaOf value; aggregate = aggregateOf value; }
    else throw "attribute '${builtins.concatStringsSep "." (select ++ path)}' is not a derivation";
  # What the selected value is, or "failed" when classifying it throws.
  rootKind = let kind = tryEval (classify [ ] (valueAt [ ])); in if kind.success then kind.value else "failed";

  # The walk's jobs without those whose classification threw, numbered in walk order: the
  # ranges below index this list, so every process that walks the same source agrees on them.
  walked = walk [ ] selected;
  good = filter (job: !job.failed) walked;
  slice = from: to: builtins.genList (i: (builtins.elemAt good (from + i)).path) (to - from);
  count = builtins.length good;

  # Part `index` of `parts` of the jobs, at most `max` of them: walk and instantiate in one process.
  part =
    let
      from = builtins.div (count * request.index) request.parts;
      end = builtins.div (count * (request.index + 1)) request.parts;
      to = if end - from > request.max then from + request.max else end;
    in
    { root = rootKind; inherit from to; jobs = walked; results = if rootKind == "attrs" || rootKind == "job" then map instantiate (slice from to) else [ ]; };

  # Jobs `from` to `to` (exclusive) of the walk, with their paths so the caller can check them.
  range = let to = if request.to > count then count else request.to; paths = slice request.from to; in
    { inherit paths; results = map instantiate paths; };
in
if request.op == "part" then part
else if request.op == "range" then range
else if request.op == "walk" then
  {
    root = rootKind;
    jobs = walk request.path (foldl' step selected request.path);
  }
else if request.op == "probe" then probe request.path
else if request.op == "instantiate" then map instantiate request.paths
else throw "unknown request '${request.op}'"
