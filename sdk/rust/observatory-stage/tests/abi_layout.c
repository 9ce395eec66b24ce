/*
 * sdk/rust/observatory-stage/tests/abi_layout.c - prints the size and the
 * offset of every field of every struct of the plugin ABI, as the C compiler
 * lays them out from core/include/observatory/stage.h.
 *
 * tests/abi_layout.rs compares these lines with the crate's #[repr(C)]
 * mirrors, so a field added to the header and not to the crate (or moved,
 * or resized) fails `cargo test`. One line per item: "struct.field offset"
 * ("offset+size") and "struct sizeof N", plus the constants the crate copies.
 */
#include <stddef.h>
#include <stdio.h>

#include <observatory/stage.h>

#define SIZE(t) printf("%s sizeof %zu\n", #t, sizeof(t))
#define OFF(t, f) printf("%s.%s %zu+%zu\n", #t, #f, offsetof(t, f), sizeof(((t *)0)->f))

int main(void)
{
    SIZE(obs_record);
    OFF(obs_record, data);
    OFF(obs_record, len);
    OFF(obs_record, key);
    OFF(obs_record, seq);
    OFF(obs_record, t_intended_ns);

    SIZE(obs_batch);
    OFF(obs_batch, records);
    OFF(obs_batch, n_records);
    OFF(obs_batch, reserved);

    SIZE(obs_out);
    OFF(obs_out, records);
    OFF(obs_out, n_records);
    OFF(obs_out, cap_records);
    OFF(obs_out, arena);
    OFF(obs_out, arena_used);
    OFF(obs_out, arena_cap);
    OFF(obs_out, n_passed);
    OFF(obs_out, reserved);
    OFF(obs_out, grow);
    OFF(obs_out, host_private);

    SIZE(obs_param_desc);
    OFF(obs_param_desc, name);
    OFF(obs_param_desc, type);
    OFF(obs_param_desc, reserved);
    OFF(obs_param_desc, default_value);
    OFF(obs_param_desc, min);
    OFF(obs_param_desc, max);
    OFF(obs_param_desc, help);

    SIZE(obs_param_value);
    OFF(obs_param_value, name);
    OFF(obs_param_value, type);
    OFF(obs_param_value, is_default);
    OFF(obs_param_value, i);
    OFF(obs_param_value, d);
    OFF(obs_param_value, s);

    SIZE(obs_params);
    OFF(obs_params, values);
    OFF(obs_params, n_values);
    OFF(obs_params, reserved);

    SIZE(obs_host);
    OFF(obs_host, struct_size);
    OFF(obs_host, abi_major);
    OFF(obs_host, abi_minor);
    OFF(obs_host, stage_name);
    OFF(obs_host, plugin_path);
    OFF(obs_host, seed);
    OFF(obs_host, batch_size);
    OFF(obs_host, reserved);
    OFF(obs_host, log);
    OFF(obs_host, counter_register);
    OFF(obs_host, counter_add);
    OFF(obs_host, now_ns);
    OFF(obs_host, alloc);
    OFF(obs_host, realloc);
    OFF(obs_host, free);
    OFF(obs_host, host_private);
    OFF(obs_host, wall_offset_ns);
    OFF(obs_host, blocked_add);
    OFF(obs_host, hold);
    OFF(obs_host, release);

    SIZE(obs_gen_request);
    OFF(obs_gen_request, n_records);
    OFF(obs_gen_request, reserved);
    OFF(obs_gen_request, first_seq);
    OFF(obs_gen_request, t_intended_ns);
    OFF(obs_gen_request, ticket);

    SIZE(obs_stage_desc);
    OFF(obs_stage_desc, magic);
    OFF(obs_stage_desc, abi_major);
    OFF(obs_stage_desc, abi_minor);
    OFF(obs_stage_desc, struct_size);
    OFF(obs_stage_desc, kind);
    OFF(obs_stage_desc, name);
    OFF(obs_stage_desc, version);
    OFF(obs_stage_desc, description);
    OFF(obs_stage_desc, params);
    OFF(obs_stage_desc, n_params);
    OFF(obs_stage_desc, reserved);
    OFF(obs_stage_desc, init);
    OFF(obs_stage_desc, generate);
    OFF(obs_stage_desc, process);
    OFF(obs_stage_desc, consume);
    OFF(obs_stage_desc, flush);
    OFF(obs_stage_desc, fini);
    OFF(obs_stage_desc, export_state);
    OFF(obs_stage_desc, import_state);
    OFF(obs_stage_desc, flags);
    OFF(obs_stage_desc, reserved2);
    OFF(obs_stage_desc, delivered);

    printf("const OBS_STAGE_MAGIC %lu\n", (unsigned long)OBS_STAGE_MAGIC);
    printf("const OBS_ABI_MAJOR %d\n", OBS_ABI_MAJOR);
    printf("const OBS_ABI_MINOR %d\n", OBS_ABI_MINOR);
    printf("const OBS_HOST_SIZE_1_2 %zu\n", (size_t)OBS_HOST_SIZE_1_2);
    printf("const OBS_STAGE_SOURCE %u\n", OBS_STAGE_SOURCE);
    return 0;
}
