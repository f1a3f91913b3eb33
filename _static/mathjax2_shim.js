// The ipywidgets HTML manager typesets widget labels with MathJax 2's `MathJax.Hub.Queue`; the book
// loads MathJax 3, which has no Hub ("Cannot read properties of undefined (reading 'Queue')").
// This gives every MathJax object a Hub whose Queue asks MathJax 3 to typeset the element, also
// after MathJax 3 replaces the global object while it starts.
(function () {
  var hub = {
    Queue: function (job) {
      var mj = window.MathJax;
      if (mj && mj.typesetPromise) mj.typesetPromise(job && job[2] ? [job[2]] : undefined).catch(function () {});
    },
  };
  var current = window.MathJax;
  if (current && typeof current === "object" && !current.Hub) current.Hub = hub;
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    get: function () { return current; },
    set: function (value) {
      current = value;
      if (value && typeof value === "object" && !value.Hub) value.Hub = hub;
    },
  });
})();
