export { routeTopk, planRouteTopk, routeConfigFromHf, type RouteOptions, type RouteOutputs } from './route.ts';
export {
  getDispatchLayout,
  planDispatchLayout,
  planDispatch,
  planCombine,
  dispatch,
  combine,
  contiguousRowsBound,
  type DispatchLayout,
  type DispatchLayoutOptions,
  type Dispatched,
} from './dispatch.ts';
export { ExpertLoadCounters, parseExpertLoad, type ExpertLoadJson } from './counters.ts';
export {
  routeTopkRef,
  dispatchLayoutRef,
  combineRef,
  moeRef,
  mlpRef,
  checkRouteConfig,
  MAX_GROUPS,
  type RouteConfig,
  type RouteResult,
  type ScoringFunc,
  type TopkMethod,
  type DispatchLayoutKind,
  type DispatchLayoutRef,
  type MlpRef,
  type MoeRefWeights,
} from './reference.ts';
export { moeLayer, planMoeLayer, type MoeLayerPlan, type MoeLayerWeights, type MoeLayerOptions, type MoeLayerResult, type MlpWeights, type MoeWeight } from './layer.ts';
