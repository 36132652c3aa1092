import {
  type FrameDesc,
  KWORKER as KWORKER_CHAIN,
  type TaskDesc,
  USER_NANOSLEEP as USER_NANOSLEEP_CHAIN,
} from '@klpsim/kernel';

export { irqPreempted } from '@klpsim/kernel';

/** The kernel package's chains, as mutable arrays for the tests to map over. */
export const USER_NANOSLEEP: FrameDesc[] = [...USER_NANOSLEEP_CHAIN];
export const KWORKER: FrameDesc[] = [...KWORKER_CHAIN];

export const task = (frames: FrameDesc[], extra: Partial<TaskDesc> = {}): TaskDesc => ({
  frames,
  ...extra,
});
