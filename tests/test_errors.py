"""One line per error: what a recipe's exception becomes in runs.csv and on the terminal."""

from bench.errors import summarize_exception


def test_keras3_wrapped_error_gives_its_first_meaningful_line():
    message = (
        "Exception encountered when calling KLLayer.call().\n\n"
        "\x1b[1mLayer.add_loss() got an unexpected keyword argument 'inputs'\x1b[0m\n\n"
        "Arguments received by KLLayer.call():\n  • inputs=['tf.Tensor(shape=(None, 2))']"
    )
    assert (
        summarize_exception(TypeError(message))
        == "TypeError: Layer.add_loss() got an unexpected keyword argument 'inputs'"
    )
    shape_error = (
        "Could not automatically infer the output shape / dtype of 'vae' (of type Functional)."
        "\n\nboom"
    )
    assert summarize_exception(ValueError(shape_error)) == "ValueError: boom"


def test_autograph_error_gives_the_original_message():
    message = (
        "in user code:\n\n"
        '    File "/x/training.py", line 1398, in train_function  *\n'
        "        return step_function(self, iterator)\n"
        '    File "/x/keras_tensor.py", line 290, in __array__\n'
        "        raise TypeError(\n\n"
        "    TypeError: You are passing KerasTensor(...), an intermediate symbolic input\n"
    )
    assert (
        summarize_exception(TypeError(message))
        == "TypeError: You are passing KerasTensor(...), an intermediate symbolic input"
    )


def test_error_without_message_names_where_it_was_raised():
    def fit_the_model():
        raise NotImplementedError

    assert (
        summarize_exception(raised_from(fit_the_model))
        == "NotImplementedError: (no message) in fit_the_model()"
    )
    assert summarize_exception(RuntimeError("\n  \n")) == "RuntimeError: (no message)"


def raised_from(function):
    try:
        function()
    except Exception as caught:
        return caught
