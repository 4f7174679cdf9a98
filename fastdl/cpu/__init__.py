"""The ``cpu`` backend: the C++ extension ``fastdl._core`` behind ``fastdl.kernels``.

``kernels`` adapts every kernel of the contract to ``_core`` (``conv`` and ``rnn`` hold the two larger
families); ``threadpoolctl_controller`` shows the kernels' thread pool to threadpoolctl. Importing this
package does not load ``_core``: ``fastdl.backend`` loads ``fastdl.cpu.kernels`` when the backend is chosen.
"""
