/** Public API of the metrics module (see metrics/README.md). */
export * from './errors';
export * from './labels';
export * from './definitions';
export * from './registry';
export * from './accounting';
export * from './accountant';
export * from './record';
export * from './access-log';
export {
  CONTENT_TYPES,
  familiesFromJSON,
  render,
  renderOpenMetrics,
  renderText,
  type ExpositionFormat,
  type FamilyType,
  type MetricFamily,
  type Sample,
} from './exposition';
export * from './merge';
export * from './http';
