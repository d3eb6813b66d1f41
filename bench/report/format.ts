/** A count or rate for people: rounded, with thousands separators (12,345). */
export const whole = (n: number): string => Math.round(n).toLocaleString('en-US');
