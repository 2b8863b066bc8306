{# USES_VARIABLES { N } #}
{# astrogate: a (summed) variable summed by all OpenMP threads (network/parallel_sum.py says why).
   Each thread adds its static share of the synapses into its own row of partial sums; the rows are then
   added in thread order, so the result does not depend on scheduling. With one thread (or without
   OpenMP) the terms are added in synapse order, as Brian2's serial template adds them. #}
{% extends 'common_group.cpp' %}

{% block maincode %}
    {% set _target_var_array = get_array_name(_target_var) %}
    {% set _index_array = get_array_name(_index_var) %}
    {% set _sum_type = c_data_type(_target_var.dtype) %}
    //// MAIN CODE ////////////
    const int _target_size = {{constant_or_scalar(_target_size_name, variables[_target_size_name])}};
    const int _num_threads = {{ openmp_pragma('get_num_threads') }};
    // one row per thread, kept across steps; rows padded apart by at least a 64-byte cache line so that
    // threads adding into neighbouring rows (a one-element target) do not share a line
    const size_t _row = ((size_t)_target_size + 7) / 8 * 8 + 8;
    static std::vector<{{_sum_type}}> _partial_sums;
    _partial_sums.assign((size_t)_num_threads * _row, 0);

    // scalar code
    const size_t _vectorisation_idx = -1;
    {{scalar_code|autoindent}}

    {{ openmp_pragma('parallel') }}
    {
        {{_sum_type}}* const _partial = &_partial_sums[(size_t)({{ openmp_pragma('get_thread_num') }}) * _row];
        {{ openmp_pragma('static') }}
        for(int _idx=0; _idx<{{N}}; _idx++)
        {
            // vector code
            const size_t _vectorisation_idx = _idx;
            {{vector_code|autoindent}}
            _partial[{{_index_array}}[_idx]] += _synaptic_var;
        }
        // (the loop's implicit barrier: every row is complete here)
        {{ openmp_pragma('static') }}
        for(int _target_idx=0; _target_idx<_target_size; _target_idx++)
        {
            {{_sum_type}} _sum = 0;
            for(int _thread=0; _thread<_num_threads; _thread++)
                _sum += _partial_sums[(size_t)_thread * _row + _target_idx];
            {{_target_var_array}}[_target_idx + {{_target_start}}] = _sum;
        }
    }
{% endblock %}
