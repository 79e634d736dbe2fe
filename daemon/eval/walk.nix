# Evaluation program of the built-in evaluator, run by `nix eval --json --expr`.
# It mirrors nix-eval-jobs' worker: functions are called with no arguments,
# the selected attribute set is always entered, nested sets only when they set
# `recurseForDerivations = true` (or when forceRecurse is on).
{ root, select, forceRecurse, request }:
let
  inherit (builtins) attrNames concatMap foldl' isAttrs isFunction tryEval;

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

  instantiate = path:
    let value = valueAt path;
    in
    if isDerivation value then { drvPath = value.drvPath; name = value.name; }
    else throw "attribute '${builtins.concatStringsSep "." (select ++ path)}' is not a derivation";
in
if request.op == "walk" then
  {
    root = let kind = tryEval (classify [ ] (valueAt [ ])); in if kind.success then kind.value else "failed";
    jobs = walk request.path (foldl' step selected request.path);
  }
else if request.op == "probe" then probe request.path
else if request.op == "instantiate" then map instantiate request.paths
else throw "unknown request '${request.op}'"
