export { x } from "@klpsim/kernel";
