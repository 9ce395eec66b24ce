/*
 * plugins/common/payload.h - the record layouts of the IoT and log payload
 * families (private to plugins/; documented for users in docs/plugins.md).
 *
 * Binary records are little-endian, fixed-width, with no implicit padding
 * and explicit padding zero, like the market records (market.h). Each has a
 * kind byte a consumer can check: IoT reading 0x11, IoT summary 0x12, log
 * event 0x21.
 */
#ifndef OBS_PLUGINS_PAYLOAD_H
#define OBS_PLUGINS_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "payload records are stored in host order, which must be little-endian"
#endif

enum { IOT_READING = 0x11, IOT_SUMMARY = 0x12, LOG_EVENT = 0x13 };

/* The sensor's valid ranges: a reading outside them is out_of_range. */
#define IOT_TEMP_MIN_E2 (-4000) /* -40.00 C */
#define IOT_TEMP_MAX_E2 8500    /* 85.00 C */
#define IOT_HUM_MAX_E2 10000    /* 100.00 % */
#define IOT_BAT_MIN_MV 2000
#define IOT_BAT_MAX_MV 4200

/* One sensor reading, binary form (gen_iot format=binary; xf_iot input). */
typedef struct iot_reading {
    uint64_t ts_ns;   /* 0: measurement time on the device (intended time minus jitter) */
    uint32_t device;  /* 8: device id, 0 .. devices-1 */
    uint32_t dev_seq; /* 12: the device's own reading counter */
    int32_t temp_e2;  /* 16: temperature, C x 100 */
    uint16_t hum_e2;  /* 20: relative humidity, % x 100 */
    uint16_t bat_mv;  /* 22: battery, mV */
    uint8_t type;     /* 24: IOT_READING */
    uint8_t alarm;    /* 25: 1 during a correlated burst, else 0 */
    uint8_t pad[2];   /* 26: zero */
    uint32_t check;   /* 28: FNV-1a 32 of bytes 0..27 */
} iot_reading;
#define IOT_READING_LEN 32
_Static_assert(sizeof(iot_reading) == IOT_READING_LEN, "iot_reading layout");

/* Per-device aggregate (xf_iot output). */
typedef struct iot_summary {
    uint64_t last_ts_ns; /* 0: ts of the last reading aggregated */
    uint32_t device;     /* 8 */
    uint32_t n;          /* 12: readings aggregated */
    int64_t temp_sum_e2; /* 16 */
    int32_t temp_min_e2; /* 24 */
    int32_t temp_max_e2; /* 28 */
    uint32_t n_alarm;    /* 32: readings with the alarm flag */
    uint16_t bat_min_mv; /* 36 */
    uint8_t type;        /* 38: IOT_SUMMARY */
    uint8_t pad;         /* 39: zero */
} iot_summary;
#define IOT_SUMMARY_LEN 40
_Static_assert(sizeof(iot_summary) == IOT_SUMMARY_LEN, "iot_summary layout");

/* Log levels, in order of severity. */
enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_N_LEVELS = 4 };
static const char *const log_level_names[LOG_N_LEVELS] = {"debug", "info", "warn", "error"};

/* One log event, binary form: this header, then msg_len message bytes. */
typedef struct log_header {
    uint64_t ts_ns;   /* 0: event time (the intended time) */
    uint16_t msg_len; /* 8: bytes of message after the header */
    uint16_t service; /* 10: service id */
    uint16_t tmpl;    /* 12: template id */
    uint8_t level;    /* 14: LOG_DEBUG .. LOG_ERROR */
    uint8_t type;     /* 15: LOG_EVENT */
} log_header;
#define LOG_HEADER_LEN 16
_Static_assert(sizeof(log_header) == LOG_HEADER_LEN, "log_header layout");

#endif /* OBS_PLUGINS_PAYLOAD_H */
