-- Argo CD health check for serving.mlops.dev/MLModel (the operator's status contract, kstatus style).
-- Install: deploy/argocd/argocd-cm-patch.yaml. Argo CD runs this in gopher-lua (Lua 5.1) with `obj` set.
local hs = {}

local function find_condition(conditions, condition_type)
  if conditions == nil then
    return nil
  end
  for _, condition in ipairs(conditions) do
    if condition.type == condition_type then
      return condition
    end
  end
  return nil
end

-- Ready=Unknown with these reasons is a normal rollout, never a failure.
local rollout_reasons = { RollingOut = true, Progressing = true }

local generation = obj.metadata and obj.metadata.generation
local status = obj.status
if status == nil or status.conditions == nil or #status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report a status"
  return hs
end

local ready = find_condition(status.conditions, "Ready")
local stalled = find_condition(status.conditions, "Stalled")
local reconciling = find_condition(status.conditions, "Reconciling")

-- A status written for an older spec says nothing about the current one.
local observed = status.observedGeneration ~= nil and generation ~= nil and status.observedGeneration == generation
if observed and ready ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration ~= generation then
  observed = false
end
if not observed then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = (ready ~= nil and ready.message) or stalled.message or "Stalled"
  return hs
end

if ready ~= nil and ready.status == "True" then
  if ready.reason == "ScaledToZero" then
    hs.status = "Suspended"
  else
    hs.status = "Healthy"
  end
  hs.message = ready.message or "Ready"
  return hs
end

if ready ~= nil and ready.status == "False" and not rollout_reasons[ready.reason or ""] then
  hs.status = "Degraded"
  hs.message = ready.message or ready.reason or "Not ready"
  return hs
end

hs.status = "Progressing"
if reconciling ~= nil and reconciling.status == "True" and reconciling.message ~= nil then
  hs.message = reconciling.message
elseif ready ~= nil and ready.message ~= nil then
  hs.message = ready.message
else
  hs.message = "Waiting for the MLModel to become ready"
end
return hs
